import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Sandbox tests spawn real processes and kill process groups: keep each file in its own process.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
