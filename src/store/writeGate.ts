/**
 * Write commands through a gate, per process: at most GATE_CONCURRENCY in flight.
 *
 * FerretDB 1.24 hangs a database for good once 100 statements that match existing documents are in
 * flight together (its connection pool). The reading-history writer keeps one command of at most
 * MAX_STATEMENTS_PER_COMMAND (25) in flight per process, on the readings database; the alert path's
 * other writes (alert pages, incidents, their state) go through a gate of the database they are
 * in, at most GATE_CONCURRENCY commands of at most GATED_MAX_STATEMENTS each, so one process never
 * has more than 15 statements in flight on one database and six replicas stay under 100. MongoDB
 * does not care.
 * (A fault-suite stall once blamed on this was the driver's monitor hanging: see
 * store/clientWatchdog.ts.)
 */
import pLimit from 'p-limit';
import { COMMAND_DEADLINE_MS, withDeadline } from './commandDeadline.js';

export const GATED_MAX_STATEMENTS = 5;
/** One per partition the alert consumer works on at once (its partitionsConsumedConcurrently). */
export const GATE_CONCURRENCY = 3;

export type WriteGate = <T>(write: () => Promise<T>) => Promise<T>;

/**
 * Each write gets `deadlineMs` (store/commandDeadline.ts): a write that hangs gives its slot back.
 * Waiting writes start in arrival order (p-limit's queue).
 */
export function createWriteGate(concurrency = GATE_CONCURRENCY, deadlineMs = COMMAND_DEADLINE_MS): WriteGate {
  const limit = pLimit(concurrency);
  return <T>(write: () => Promise<T>): Promise<T> => limit(() => withDeadline(write(), deadlineMs, 'store write'));
}
