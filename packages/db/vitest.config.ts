import { defineConfig } from 'vitest/config';

// Integration tests share one Postgres server; each file makes its own test_ database. Forks isolate
// native handles (pg sockets) per file, and two workers keep a 2-core machine responsive.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
