// The layers of src/, kept by `npm run lint` (dependency-cruiser). Imports point down; no cycles,
// type-only imports included. From the bottom:
//   domain/                      the types and rules of the domain: imports nothing
//   shared/, errors.ts, logger.ts  small tools every layer may use
//   store/                       MongoDB: speaks the domain
//   auth/, limits/, observability/, lifecycle/  policies and meters, knowing no outside system
//   fanout/, stream/, simulator/, jobs/  the pipelines (Redis, Kafka), over the store
//   config.ts, config/, localFerretDb.ts  configuration, read once at the top and passed down as values
//   schema/                      GraphQL types: speak the domain, know no resolver
//   resolvers/                   the API, over the pipelines and the store
//   http/                        transports of the API
//   app.ts, main.ts              the composition root
const DOMAIN = '^src/domain/';
const BASE = ['^src/shared/', '^src/errors[.]ts$', '^src/logger[.]ts$'];
const STORE = '^src/store/';
const SUPPORT = '^src/(auth|limits|observability|lifecycle)/';
const PIPELINES = '^src/(fanout|stream|simulator|jobs)/';
const CONFIG = '^src/(config/|(config|localFerretDb)[.]ts$)';
const SCHEMA = '^src/schema/';
const RESOLVERS = '^src/resolvers/';
const HTTP = '^src/http/';
const TOP = '^src/(app|main)[.]ts$';

/** `layer` may import only from `allowed` (its own layer included). */
const layer = (name, from, allowed) => ({
  name,
  comment: `${name}: imports only ${allowed.flat().join(', ')} (see .dependency-cruiser.mjs)`,
  severity: 'error',
  from: { path: from },
  to: { pathNot: allowed.flat() },
});

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'An import cycle: move what both sides share down a layer.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    layer('domain-imports-nothing', DOMAIN, [DOMAIN]),
    layer('base-layer', BASE, [DOMAIN, BASE]),
    layer('store-layer', STORE, [DOMAIN, BASE, STORE]),
    layer('support-layer', SUPPORT, [DOMAIN, BASE, SUPPORT]),
    layer('pipeline-layer', PIPELINES, [DOMAIN, BASE, STORE, SUPPORT, PIPELINES]),
    layer('config-layer', CONFIG, [DOMAIN, BASE, SUPPORT, CONFIG]),
    layer('schema-layer', SCHEMA, [DOMAIN, BASE, SCHEMA]),
    layer('resolvers-layer', RESOLVERS, [DOMAIN, BASE, STORE, SUPPORT, PIPELINES, CONFIG, SCHEMA, RESOLVERS]),
    layer('http-layer', HTTP, [DOMAIN, BASE, STORE, SUPPORT, PIPELINES, CONFIG, SCHEMA, RESOLVERS, HTTP]),
    {
      name: 'nothing-imports-the-root',
      comment: 'Only main.ts imports app.ts: the composition root is the top.',
      severity: 'error',
      from: { pathNot: TOP },
      to: { path: TOP },
    },
    {
      name: 'every-file-has-a-layer',
      comment: 'A new folder of src/ needs its place in the layers above.',
      severity: 'error',
      from: {
        path: '^src/',
        pathNot: [DOMAIN, BASE, STORE, SUPPORT, PIPELINES, CONFIG, SCHEMA, RESOLVERS, HTTP, TOP].flat(),
      },
      to: {},
    },
  ],
  options: {
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
