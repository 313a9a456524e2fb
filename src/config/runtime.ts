/** The process itself: its shutdown deadline and its logs. (Read at the top of Config.) */
import { int, oneOf, optionalText, type Declarations } from './values.js';

export const RUNTIME_VARIABLES = {
  SHUTDOWN_TIMEOUT_MS: { schema: int(15_000, 100, 600_000), doc: 'deadline of the graceful shutdown' },
  LOG_LEVEL: {
    schema: optionalText(/^(fatal|error|warn|info|debug|trace|silent)$/),
    doc: 'default info (silent in tests)',
  },
  LOG_FORMAT: {
    schema: oneOf(['auto', 'json', 'pretty'] as const, 'auto'),
    doc: 'auto: pretty at a terminal, JSON otherwise',
  },
} as const satisfies Declarations;
