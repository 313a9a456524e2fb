import { createRequire } from 'node:module';
import { configDefaults, defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);
// The cluster suites (test/cluster: a 3-node Kafka, a Redis Cluster) start clusters of their own and
// run for minutes: only `npm run test:cluster` (TEST_CLUSTER=1) runs them, and only them.
const clusterSuites = process.env.TEST_CLUSTER === '1';

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (main) and ESM (module) builds. Node loads the CJS one for type-graphql,
    // Apollo and graphql-ws; Vite would give our sources the ESM one. Two copies break `instanceof`
    // checks on scalars, so our sources get the same copy Node gives everyone else.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: clusterSuites ? ['test/cluster/**/*.test.ts'] : ['test/**/*.test.ts'],
    exclude: clusterSuites ? configDefaults.exclude : [...configDefaults.exclude, 'test/cluster/**'],
    // Integration files share one Kafka broker on 2 cores: one file at a time keeps rebalances quick.
    fileParallelism: false,
    setupFiles: ['test/support/setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    reporters: process.env.CI ? ['verbose'] : ['default'],
  },
});
