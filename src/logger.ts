/**
 * One structured logger (pino); modules take a child named after their role, e.g. `stream.consumer`.
 * JSON lines, except for a person at a terminal (LOG_FORMAT=pretty, or auto with a TTY): then
 * pino-pretty, in a worker thread, so the API never formats on its own event loop.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, base: Record<string, unknown> = {}, pretty = false): Logger {
  const options = { level, base: { ...base }, timestamp: pino.stdTimeFunctions.isoTime };
  if (!pretty) return pino(options);
  return pino(
    options,
    pino.transport({
      target: 'pino-pretty',
      options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
    }),
  );
}
