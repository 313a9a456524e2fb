import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration files share one Kafka broker on 2 cores: one file at a time keeps rebalances quick.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 90_000,
    reporters: process.env.CI ? ['verbose'] : ['default'],
  },
});
