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
  expectTypeOf<SandboxLimits>().toEqualTypeOf<WireLimits>();
});
