/**
 * One write command at a time through a gate, per process.
 *
 * FerretDB 1.24 hangs a database for good once 100 statements that match existing documents are in
 * flight together (its connection pool), across every replica. The reading-history writer keeps one
 * command of at most MAX_STATEMENTS_PER_COMMAND (25) in flight per process; the alert path's other
 * writes (alert pages, incidents, their state) go through this gate one command of at most
 * GATED_MAX_STATEMENTS (5) at a time, so one process never has more than 30 in flight and three
 * replicas stay under 100. MongoDB does not care. (A fault-suite stall once blamed on this was the
 * driver's monitor hanging: see store/clientWatchdog.ts.)
 */
export const GATED_MAX_STATEMENTS = 5;

export type WriteGate = <T>(write: () => Promise<T>) => Promise<T>;

export function createWriteGate(): WriteGate {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(write: () => Promise<T>): Promise<T> => {
    const run = tail.then(write, write);
    tail = run.catch(() => undefined);
    return run;
  };
}
