/**
 * A deadline on one store write command.
 *
 * The MongoDB driver (6.22) writes a command larger than the socket's buffer, then waits for the
 * socket's `drain` event. If the server closes the connection meanwhile (FerretDB stopping, a
 * proxy, a network fault), the socket is destroyed without an error and `drain` never comes: the
 * command's promise never settles (reproduced through a loopback proxy: a 4 MiB insert hung for
 * good). Our writers run their commands one after another, so one such command would stall a
 * partition, the reading writer or a write-gate slot forever. Racing each write command against a
 * deadline turns the hang into a retryable error. Writes are idempotent (replace by `_id`, inserts
 * whose duplicates are recognised), so retrying a command that did reach the server is safe.
 */

/** Long enough for any one command of at most 25 statements under load. */
export const COMMAND_DEADLINE_MS = 30_000;

/** The command did not complete in time (its connection may have been lost mid-write). */
export class CommandDeadlineError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no reply within ${ms} ms (connection lost mid-command?)`);
    this.name = 'CommandDeadlineError';
  }
}

export function withDeadline<T>(command: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CommandDeadlineError(what, ms)), ms);
    timer.unref();
  });
  return Promise.race([command, deadline]).finally(() => clearTimeout(timer));
}
