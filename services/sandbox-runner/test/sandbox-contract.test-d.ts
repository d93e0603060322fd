import type {
  SandboxLanguage as WireLanguage,
  SandboxLimits as WireLimits,
  SandboxOutcome as WireOutcome,
} from '@tandem/contracts';
import { expectTypeOf, test } from 'vitest';

import type { SandboxLanguage, SandboxLimits, SandboxOutcome } from '../src/sandbox/index.js';

// A type test: vitest's typecheck (`typecheck` in vitest.config.ts) runs tsc on it during `vitest run`, and
// the typecheck task checks it too. Nothing of it runs: at run time these assertions check nothing.
test('sandbox domain types match the wire contracts', () => {
  expectTypeOf<SandboxLanguage>().toEqualTypeOf<WireLanguage>();
  expectTypeOf<SandboxOutcome>().toEqualTypeOf<WireOutcome>();
  // The backend's limits are the wire's plus the runner-side caps on collected files (all optional).
  expectTypeOf<Pick<SandboxLimits, keyof WireLimits>>().toEqualTypeOf<WireLimits>();
  expectTypeOf<WireLimits>().toExtend<SandboxLimits>();
  expectTypeOf<Exclude<keyof SandboxLimits, keyof WireLimits>>().toExtend<
    'maxFiles' | 'maxFileBytes' | 'maxTotalFileBytes'
  >();
});
