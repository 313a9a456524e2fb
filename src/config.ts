/**
 * Configuration: the only module that reads `process.env`. Parsed once at start, every problem
 * reported together, result frozen.
 *
 * Every variable is declared once, in the file of its concern under config/ (http.ts, kafka.ts,
 * store.ts, history.ts, redis.ts, alerts.ts, readings.ts, limits.ts, auth.ts, requestLimits.ts,
 * runtime.ts, tracing.ts): its zod schema (type, bounds, default), what it is for, and how it lands in its
 * section of Config. config/variables.ts gathers them into VARIABLES: the set of known variables,
 * the "unknown variable" check for the project's prefixes and the check of docs/configuration.md
 * (test/unit/config.test.ts) all come from it. config/load.ts parses, and checks what involves
 * several concerns.
 */
export { ConfigError, loadConfig, loadConfigOrExit, type Config } from './config/load.js';
export { KNOWN_VARIABLES, VARIABLES } from './config/variables.js';
