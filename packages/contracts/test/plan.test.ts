import { describe, expect, it, vi } from 'vitest';
import {
  ErrorCodes,
  checkPlanSize,
  referencedStepKeysDeep,
  resolveStepReferences,
  resolveStepReferencesDeep,
  validatePlan,
  type JsonValue,
  type PlanStepInput,
  type PlanValidation,
} from '../src/index.js';

function step(key: string, tool: string, args: JsonValue = {}, dependsOn: string[] = []): PlanStepInput {
  return { key, tool, arguments: args, dependsOn };
}

const respond = (key: string, answer = 'done', dependsOn: string[] = []) =>
  step(key, 'respond', { answer }, dependsOn);
const code = (key: string, spec = 'x', dependsOn: string[] = []) =>
  step(key, 'run_code', { language: 'python', spec }, dependsOn);

function failure(result: PlanValidation): { code: string; message: string; stepId?: string } {
  if (result.ok) throw new Error(`expected a rejection, got order ${result.order.join(',')}`);
  return result.error;
}

function order(result: PlanValidation): string[] {
  if (!result.ok) throw new Error(`${result.error.code}: ${result.error.message}`);
  return result.order;
}

describe('validatePlan: size', () => {
  it('rejects a 500-step plan before looking at any step', () => {
    const estimate = vi.fn(() => 0);
    const steps = Array.from({ length: 500 }, (_, index) => code(`s${index + 1}`));
    // Steps that would fail later checks (duplicates) prove the count is checked first.
    steps.push(code('s1'));
    const error = failure(validatePlan(steps, { maxSteps: 50, maxCostUsd: 1, estimateCostUsd: estimate }));
    expect(error.code).toBe(ErrorCodes.PLAN_TOO_MANY_STEPS);
    expect(error.message).toContain('501 steps; the limit is 50');
    expect(estimate).not.toHaveBeenCalled();
  });

  it('offers the count check on its own, for callers that have not validated the calls yet', () => {
    expect(checkPlanSize(500, { maxSteps: 50 })?.code).toBe(ErrorCodes.PLAN_TOO_MANY_STEPS);
    expect(checkPlanSize(0, { maxSteps: 50 })?.code).toBe(ErrorCodes.PLAN_EMPTY);
    expect(checkPlanSize(50, { maxSteps: 50 })).toBeNull();
  });
});

describe('validatePlan: step ids', () => {
  it('rejects duplicate and malformed ids', () => {
    const duplicate = failure(validatePlan([code('a'), code('a'), respond('r')], { maxSteps: 10 }));
    expect(duplicate).toMatchObject({ code: ErrorCodes.PLAN_DUPLICATE_STEP_ID, stepId: 'a' });
    for (const key of ['', 'has space', 'a.b', 'x'.repeat(65), '{{x}}'])
      expect(failure(validatePlan([code(key), respond('r')], { maxSteps: 10 })).code).toBe(
        ErrorCodes.PLAN_INVALID_STEP_ID,
      );
  });
});

describe('validatePlan: respond', () => {
  it('needs exactly one respond, last in the list', () => {
    expect(failure(validatePlan([code('a')], { maxSteps: 10 })).code).toBe(ErrorCodes.PLAN_MISSING_RESPOND);
    expect(failure(validatePlan([respond('a'), respond('b')], { maxSteps: 10 })).code).toBe(
      ErrorCodes.PLAN_MISSING_RESPOND,
    );
    expect(failure(validatePlan([respond('a'), code('b')], { maxSteps: 10 }))).toMatchObject({
      code: ErrorCodes.PLAN_MISSING_RESPOND,
      stepId: 'a',
    });
  });

  it('refuses a step that depends on respond, explicitly or by reference', () => {
    expect(failure(validatePlan([code('a', 'x', ['r']), respond('r')], { maxSteps: 10 }))).toMatchObject({
      code: ErrorCodes.PLAN_BAD_REFERENCE,
      stepId: 'a',
    });
    expect(
      failure(validatePlan([code('a', 'use {{steps.r.value}}'), respond('r')], { maxSteps: 10 })).code,
    ).toBe(ErrorCodes.PLAN_BAD_REFERENCE);
  });
});

describe('validatePlan: dependencies', () => {
  it('rejects a dependsOn that names no step', () => {
    expect(failure(validatePlan([code('a', 'x', ['ghost']), respond('r')], { maxSteps: 10 }))).toMatchObject({
      code: ErrorCodes.PLAN_UNKNOWN_DEPENDENCY,
      stepId: 'a',
    });
  });

  it('finds references in every string, nested arrays and objects included', () => {
    const http = step('h', 'http_request', {
      method: 'POST',
      url: 'https://api.example.com/items/{{steps.a.value.id}}',
      headers: [{ name: 'X-Trace', value: '{{ steps.b.stdout }}' }],
      body: JSON.stringify({ total: '{{steps.c.value.total}}' }),
    });
    const result = validatePlan(
      [code('a'), code('b'), code('c'), http, respond('r', '{{steps.h.value.status}}')],
      {
        maxSteps: 10,
      },
    );
    if (!result.ok) throw new Error(result.error.message);
    expect(result.dependencies.get('h')).toEqual(['a', 'b', 'c']);
    expect(result.dependencies.get('r')).toEqual(['h']);
    const missing = step('h', 'http_request', {
      headers: [{ name: 'X', value: { deep: ['{{steps.zz.value}}'] } }],
    });
    expect(failure(validatePlan([missing, respond('r')], { maxSteps: 10 }))).toMatchObject({
      code: ErrorCodes.PLAN_UNKNOWN_DEPENDENCY,
      stepId: 'h',
    });
  });

  it('merges explicit and referenced dependencies once each', () => {
    const result = validatePlan(
      [code('a'), code('b', '{{steps.a.value}} {{steps.a.stdout}}', ['a']), respond('r')],
      {
        maxSteps: 10,
      },
    );
    expect(result.ok && result.dependencies.get('b')).toEqual(['a']);
  });

  it('rejects a self-dependency', () => {
    expect(failure(validatePlan([code('a', 'x', ['a']), respond('r')], { maxSteps: 10 }))).toMatchObject({
      code: ErrorCodes.PLAN_CYCLE,
      stepId: 'a',
    });
    expect(failure(validatePlan([code('a', '{{steps.a.value}}'), respond('r')], { maxSteps: 10 })).code).toBe(
      ErrorCodes.PLAN_CYCLE,
    );
  });

  it('rejects a cycle and names it', () => {
    const error = failure(
      validatePlan(
        [
          code('a'),
          code('b', 'x', ['d']),
          code('c', '{{steps.b.value}}'),
          code('d', 'x', ['c']),
          respond('r'),
        ],
        {
          maxSteps: 10,
        },
      ),
    );
    expect(error.code).toBe(ErrorCodes.PLAN_CYCLE);
    expect(error.message).toContain('b -> d -> c -> b');
    expect(error.stepId).toBe('b');
  });

  it('lets dependencies point forward and orders steps after their dependencies, otherwise as given', () => {
    expect(
      order(
        validatePlan([code('a', 'x', ['c']), code('b'), code('c'), code('d', 'x', ['a']), respond('r')], {
          maxSteps: 10,
        }),
      ),
    ).toEqual(['b', 'c', 'a', 'd', 'r']);
    expect(order(validatePlan([code('a'), code('b'), code('c'), respond('r')], { maxSteps: 10 }))).toEqual([
      'a',
      'b',
      'c',
      'r',
    ]);
    // respond is last even when nothing depends on anything.
    expect(order(validatePlan([code('z', 'x', ['y']), code('y'), respond('r')], { maxSteps: 10 }))).toEqual([
      'y',
      'z',
      'r',
    ]);
  });

  it('accepts tool definitions as well as tool names', () => {
    const result = validatePlan([{ ...respond('r'), tool: { name: 'respond' } }], { maxSteps: 1 });
    expect(order(result)).toEqual(['r']);
  });
});

describe('validatePlan: budget', () => {
  const steps = [code('a'), code('b'), respond('r')];
  const estimateCostUsd = (list: readonly PlanStepInput[]) => list.length * 0.01;

  it('refuses a plan whose estimated cost is over the budget', () => {
    const error = failure(validatePlan(steps, { maxSteps: 10, maxCostUsd: 0.02, estimateCostUsd }));
    expect(error.code).toBe(ErrorCodes.PLAN_OVER_BUDGET);
    expect(error.message).toContain('0.0300');
    expect(validatePlan(steps, { maxSteps: 10, maxCostUsd: 0.03, estimateCostUsd }).ok).toBe(true);
  });

  it('treats an estimate that is not a number as over budget', () => {
    expect(
      failure(validatePlan(steps, { maxSteps: 10, maxCostUsd: 1, estimateCostUsd: () => Number.NaN })).code,
    ).toBe(ErrorCodes.PLAN_OVER_BUDGET);
  });
});

describe('step references in JSON values', () => {
  const results = new Map([
    ['s1', { value: { id: 7, name: 'Ada' }, stdout: 'printed\n' }],
    ['s2', { value: [1, 2], stdout: '' }],
  ]);

  it('collects keys from every string, in order of appearance', () => {
    expect(
      referencedStepKeysDeep({
        a: ['{{steps.s2.value}}', { b: '{{steps.s1.stdout}} {{steps.s2.value}}' }],
        c: 3,
      }),
    ).toEqual(['s2', 's1']);
  });

  it('resolves every string inside arrays and objects and leaves keys and other values alone', () => {
    const value: JsonValue = {
      url: 'https://api.example.com/users/{{steps.s1.value.id}}',
      headers: [{ name: 'X-Name', value: '{{steps.s1.value.name}}' }],
      body: '{"items":{{steps.s2.value}},"log":"{{steps.s1.stdout}}"}',
      count: 2,
      flag: null,
      '{{steps.s1.value.id}}': 'key stays',
    };
    expect(resolveStepReferencesDeep(value, results)).toEqual({
      url: 'https://api.example.com/users/7',
      headers: [{ name: 'X-Name', value: 'Ada' }],
      body: '{"items":[1,2],"log":"printed"}',
      count: 2,
      flag: null,
      '{{steps.s1.value.id}}': 'key stays',
    });
  });

  it('does not reach into prototypes through a path', () => {
    expect(
      resolveStepReferences('{{steps.s1.value.constructor}}|{{steps.s1.value.__proto__}}', results),
    ).toBe('null|null');
  });
});
