import { describe, expect, it } from 'vitest';
import { RiskClass, type JsonValue } from '@tandem/contracts';
import { initialDecision } from '../src/domain/decide.js';

const DEFAULT_AUTO = new Set<RiskClass>(['read', 'compute']);

describe('initialDecision', () => {
  it.each([
    ['read', 'respond'],
    ['compute', 'run_code'],
  ] as const)('auto-approves a %s step (%s) with the default set', (riskClass, tool) => {
    expect(initialDecision({ riskClass, tool, arguments: {} }, DEFAULT_AUTO)).toEqual({
      kind: 'approval',
      mode: 'auto',
      status: 'approved',
      decidedBy: 'policy:auto-approve',
      reason: `risk class ${riskClass} is auto-approved by configuration`,
    });
  });

  it.each(['write', 'network', 'destructive'] as const)(
    'sends a %s step to a human with the default set',
    (riskClass) => {
      expect(initialDecision({ riskClass, tool: 'some_tool', arguments: {} }, DEFAULT_AUTO)).toEqual({
        kind: 'approval',
        mode: 'human',
        status: 'pending',
        reason: `risk class ${riskClass} needs a human`,
      });
    },
  );

  it('sends every step to a human when nothing is auto-approved', () => {
    for (const riskClass of RiskClass.options) {
      expect(initialDecision({ riskClass, tool: 'respond', arguments: {} }, new Set()).mode).toBe('human');
    }
  });

  it('follows the configured set, not the tool name', () => {
    const onlyWrite = new Set<RiskClass>(['write']);
    expect(initialDecision({ riskClass: 'write', tool: 'run_code', arguments: {} }, onlyWrite).status).toBe(
      'approved',
    );
    expect(initialDecision({ riskClass: 'read', tool: 'respond', arguments: {} }, onlyWrite).status).toBe(
      'pending',
    );
  });

  it('makes an ask_human step a question for a human even when its risk class is auto-approved', () => {
    const everything = new Set<RiskClass>(RiskClass.options);
    expect(
      initialDecision(
        {
          riskClass: 'read',
          tool: 'ask_human',
          arguments: { question: 'Which region?', choices: ['eu', 'us'] },
        },
        everything,
      ),
    ).toEqual({
      kind: 'question',
      mode: 'human',
      status: 'pending',
      reason: "ask_human waits for a human's answer",
      question: 'Which region?',
      choices: ['eu', 'us'],
    });
  });

  it('keeps an open question open: no or empty choices mean any answer', () => {
    const argumentSets: Array<Record<string, JsonValue>> = [
      { question: 'Why?' },
      { question: 'Why?', choices: [] },
      { question: 'Why?', choices: null },
    ];
    for (const args of argumentSets) {
      const decision = initialDecision(
        { riskClass: 'read', tool: 'ask_human', arguments: args },
        DEFAULT_AUTO,
      );
      expect(decision).toMatchObject({
        kind: 'question',
        status: 'pending',
        question: 'Why?',
        choices: null,
      });
    }
  });

  it('rejects an ask_human step at once when its arguments hold no question', () => {
    const argumentSets: Array<Record<string, JsonValue>> = [
      {},
      { question: '   ' },
      { question: 3 },
      { question: 'ok?', choices: [1, 2] },
    ];
    for (const args of argumentSets) {
      expect(
        initialDecision({ riskClass: 'read', tool: 'ask_human', arguments: args }, DEFAULT_AUTO),
      ).toMatchObject({
        kind: 'question',
        mode: 'auto',
        status: 'rejected',
        decidedBy: 'policy:invalid-question',
      });
    }
  });
});
