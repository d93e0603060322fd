import { describe, expect, it } from 'vitest';
import { RiskClass } from '@tandem/contracts';
import { initialDecision } from '../src/domain/decide.js';

const DEFAULT_AUTO = new Set<RiskClass>(['read', 'compute']);

describe('initialDecision', () => {
  it.each([
    ['read', 'respond'],
    ['compute', 'run_code'],
  ] as const)('auto-approves a %s step (%s) with the default set', (riskClass, tool) => {
    expect(initialDecision({ riskClass, tool }, DEFAULT_AUTO)).toEqual({
      mode: 'auto',
      status: 'approved',
      reason: `risk class ${riskClass} is auto-approved by configuration`,
    });
  });

  it.each(['write', 'network', 'destructive'] as const)(
    'sends a %s step to a human with the default set',
    (riskClass) => {
      expect(initialDecision({ riskClass, tool: 'some_tool' }, DEFAULT_AUTO)).toEqual({
        mode: 'human',
        status: 'pending',
        reason: `risk class ${riskClass} needs a human`,
      });
    },
  );

  it('sends every step to a human when nothing is auto-approved', () => {
    for (const riskClass of RiskClass.options) {
      expect(initialDecision({ riskClass, tool: 'respond' }, new Set()).mode).toBe('human');
    }
  });

  it('follows the configured set, not the tool name', () => {
    const onlyWrite = new Set<RiskClass>(['write']);
    expect(initialDecision({ riskClass: 'write', tool: 'run_code' }, onlyWrite).status).toBe('approved');
    expect(initialDecision({ riskClass: 'read', tool: 'respond' }, onlyWrite).status).toBe('pending');
  });
});
