import { describe, expect, it } from 'vitest';
import {
  editedPlanFigures,
  modelPlanFigures,
  stepsToStore,
  strategySuccess,
} from '../src/domain/plan-record.js';
import { planQuality } from '../src/domain/quality.js';
import { step } from './helpers/steps.js';

const pattern = (id: string, successCount: number, failureCount: number) => ({
  id,
  type: 'strategy' as const,
  scope: 'kind:arithmetic',
  content: 'plans shaped run_code -> respond worked',
  successCount,
  failureCount,
  confidence: 0.5,
});

describe('strategySuccess', () => {
  it('is the success rate over every pattern shown, or null without history', () => {
    expect(strategySuccess([])).toBeNull();
    expect(strategySuccess([pattern('a', 0, 0)])).toBeNull();
    expect(strategySuccess([pattern('a', 3, 1), pattern('b', 0, 4)])).toBe(3 / 8);
  });
});

describe('modelPlanFigures', () => {
  const steps = [
    step('s1', 'run_code', { language: 'python', spec: 'sum' }),
    step('s2', 'respond', { answer: 'x' }),
  ];

  it('scores the plan from its rejections, calls, risk, cost against budget and learned history', () => {
    const figures = modelPlanFigures({
      steps,
      attempts: 2,
      invalidCalls: 1,
      patterns: [pattern('p1', 3, 1)],
      budget: { maxCostUsd: 1 },
      maxSteps: 20,
      estimateStepCostUsd: (s) => (s.tool.name === 'run_code' ? 0.25 : 0),
    });
    const factors = {
      structural: 1,
      rejections: 1,
      invalidCalls: 1,
      stepCount: 2,
      maxSteps: 20,
      riskMix: { read: 1, compute: 1, write: 0, network: 0, destructive: 0 },
      estimatedCostUsd: 0.25,
      budgetUsd: 1,
      strategySuccess: 0.75,
    };
    expect(figures).toEqual({
      estimatedCostUsd: 0.25,
      quality: { score: planQuality(factors), factors },
      strategy: 'with-patterns',
      patternIds: ['p1'],
    });
  });

  it('is a plain strategy without patterns, and without a cost budget has none to compare against', () => {
    const figures = modelPlanFigures({
      steps,
      attempts: 1,
      invalidCalls: 0,
      patterns: [],
      budget: undefined,
      maxSteps: 20,
      estimateStepCostUsd: () => 0,
    });
    expect(figures.strategy).toBe('plain');
    expect(figures.patternIds).toEqual([]);
    expect(figures.quality.factors).toMatchObject({ rejections: 0, budgetUsd: null, strategySuccess: null });
  });
});

describe('editedPlanFigures', () => {
  it('is a human edit with no rejections and no learned history', () => {
    const figures = editedPlanFigures({
      steps: [step('plant', 'write_file', { path: 'a.txt', content: 'x' })],
      budget: { maxCostUsd: 2 },
      maxSteps: 20,
      estimateStepCostUsd: () => 0.1,
    });
    expect(figures.strategy).toBe('human-edit');
    expect(figures.patternIds).toEqual([]);
    expect(figures.estimatedCostUsd).toBe(0.1);
    expect(figures.quality.factors).toMatchObject({
      rejections: 0,
      invalidCalls: 0,
      riskMix: { write: 1 },
      budgetUsd: 2,
      strategySuccess: null,
    });
  });
});

describe('stepsToStore', () => {
  it('numbers the steps in order and keys them by task, version and step, so a re-plan never collides', () => {
    let next = 0;
    const stored = stepsToStore(
      'task-1',
      3,
      [
        step('s1', 'run_code', { language: 'python', code: 'result = 1' }),
        step('s2', 'respond', { answer: 'x' }, ['s1']),
      ],
      () => `id-${++next}`,
    );
    expect(stored).toEqual([
      {
        step: {
          stepId: 'id-1',
          key: 's1',
          index: 0,
          tool: 'run_code',
          arguments: { language: 'python', code: 'result = 1' },
          riskClass: 'compute',
          sideEffects: false,
          dependsOn: [],
          rationale: 'why s1',
        },
        idempotencyKey: 'task-1:3:s1',
      },
      expect.objectContaining({
        step: expect.objectContaining({
          stepId: 'id-2',
          key: 's2',
          index: 1,
          dependsOn: ['s1'],
          riskClass: 'read',
        }),
        idempotencyKey: 'task-1:3:s2',
      }),
    ]);
  });
});
