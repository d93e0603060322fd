import type {
  SandboxLanguage as WireLanguage,
  SandboxLimits as WireLimits,
  SandboxOutcome as WireOutcome,
} from '@tandem/contracts';
import { expectTypeOf, test } from 'vitest';

import type { SandboxLanguage, SandboxLimits, SandboxOutcome } from '../src/sandbox/index.js';

// Checked by `tsc` (the typecheck task): the domain types must not drift from the wire contracts.
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
