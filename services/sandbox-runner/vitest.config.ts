import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Sandbox tests spawn real processes and kill process groups: keep each file in its own process.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Type-level tests (`expectTypeOf`, `assertType`) live in `*.test-d.ts`: tsc checks them as part of the
    // run, and a wrong type fails it like a failed test.
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
  },
});
