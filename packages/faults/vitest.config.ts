import { defineConfig } from 'vitest/config';

// Each scenario file starts its own Postgres cluster, nats-server(s) and five to ten service processes:
// one file at a time on 2 cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
