/**
 * How the driver's errors read here: duplicates of a natural key (what makes every write
 * idempotent), and an unreachable store, which every store method turns into
 * DependencyError('mongodb'), the one error other modules read.
 */
import { MongoBulkWriteError, MongoServerError } from 'mongodb';
import { DependencyError } from '../errors.js';
import type { ClientWatchdog } from './clientWatchdog.js';
import { CommandDeadlineError } from './commandDeadline.js';

export const DUPLICATE_KEY = 11000;

/** The driver types `writeErrors` as one error or a list. */
function writeErrorsOf(err: MongoBulkWriteError): { code: number; index: number }[] {
  const raw = err.writeErrors as unknown;
  return (Array.isArray(raw) ? raw : [raw]) as { code: number; index: number }[];
}

export function isOnlyDuplicates(err: unknown): err is MongoBulkWriteError {
  if (!(err instanceof MongoBulkWriteError)) return false;
  const errors = writeErrorsOf(err);
  return errors.length > 0 && errors.every((e) => e.code === DUPLICATE_KEY);
}

export function duplicateIndexes(err: MongoBulkWriteError): number[] {
  return writeErrorsOf(err).map((e) => e.index);
}

/**
 * Wraps every function of `api` (plain objects nested in it too) so that unavailability becomes
 * DependencyError, and tells `health` whether each call reached the server.
 */
export function translateErrors<T extends object>(api: T, health: Pick<ClientWatchdog, 'reached' | 'unreachable'>): T {
  const wrap =
    (fn: (...args: unknown[]) => unknown, self: object) =>
    async (...args: unknown[]): Promise<unknown> => {
      try {
        const result = await fn.apply(self, args);
        health.reached();
        return result;
      } catch (err) {
        if (isMongoUnavailable(err)) {
          health.unreachable();
          throw new DependencyError('mongodb', `the store is unreachable: ${(err as Error).message}`, true, {
            cause: err,
          });
        }
        if (err instanceof MongoServerError) health.reached(); // the server answered, with an error
        throw err;
      }
    };
  const wrapAll = (obj: object): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(obj)) {
      if (typeof value === 'function') out[key] = wrap(value as (...args: unknown[]) => unknown, obj);
      else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
        out[key] = wrapAll(value as object);
      else out[key] = value;
    }
    return out;
  };
  return wrapAll(api) as T;
}

/**
 * Whether the store could not be reached: a network, server selection or closed-client error, also
 * when a bulk write wraps it (a MongoBulkWriteError with no write errors keeps it in errorResponse).
 */
function isMongoUnavailable(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 3) return false;
  if (err instanceof CommandDeadlineError) return true;
  if (err instanceof MongoBulkWriteError && writeErrorsOf(err).length === 0)
    return isMongoUnavailable(err.errorResponse, depth + 1);
  if (err instanceof MongoServerError) return false;
  return /Mongo(Network|ServerSelection|NotConnected|Topology)/.test(err.name);
}
