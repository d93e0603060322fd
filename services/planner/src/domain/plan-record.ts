import type { LearningPatternsReply, PlannedStep, TaskBudget } from '@tandem/contracts';
import type { ValidatedStep } from './planning.js';
import { planQuality, riskMixOf, type QualityFactors } from './quality.js';

// What a plan version stores beside its steps: its quality score and the factors behind it, its
// estimated cost and the strategy it came from; and its steps as the plan.proposed event carries them.

/** The plan-level success rate of the learned strategies, or null without history. */
export function strategySuccess(patterns: LearningPatternsReply['patterns']): number | null {
  const ok = patterns.reduce((sum, pattern) => sum + pattern.successCount, 0);
  const failed = patterns.reduce((sum, pattern) => sum + pattern.failureCount, 0);
  return ok + failed === 0 ? null : ok / (ok + failed);
}

/** The figures of a plan version. */
export interface PlanFigures {
  estimatedCostUsd: number;
  quality: { score: number; factors: QualityFactors };
  /** How the plan was made: `with-patterns`, `plain` or `human-edit`. */
  strategy: string;
  /** The learned patterns shown to the planning model (stored for feedback). */
  patternIds: string[];
}

/** The figures of a plan the model made after `attempts` answers, with the patterns it was shown. */
export function modelPlanFigures(input: {
  steps: readonly ValidatedStep[];
  attempts: number;
  invalidCalls: number;
  patterns: LearningPatternsReply['patterns'];
  budget: TaskBudget | undefined;
  maxSteps: number;
  estimateStepCostUsd: (step: ValidatedStep) => number;
}): PlanFigures {
  const estimatedCostUsd = input.steps.reduce((sum, step) => sum + input.estimateStepCostUsd(step), 0);
  const factors: QualityFactors = {
    structural: 1,
    rejections: input.attempts - 1,
    invalidCalls: input.invalidCalls,
    stepCount: input.steps.length,
    maxSteps: input.maxSteps,
    riskMix: riskMixOf(input.steps.map((step) => step.tool.risk)),
    estimatedCostUsd,
    budgetUsd: input.budget?.maxCostUsd ?? null,
    strategySuccess: strategySuccess(input.patterns),
  };
  return {
    estimatedCostUsd,
    quality: { score: planQuality(factors), factors },
    strategy: input.patterns.length > 0 ? 'with-patterns' : 'plain',
    patternIds: input.patterns.map((pattern) => pattern.id),
  };
}

/** The figures of a plan a human wrote (no model answers, no learned history). */
export function editedPlanFigures(input: {
  steps: readonly ValidatedStep[];
  budget: TaskBudget | undefined;
  maxSteps: number;
  estimateStepCostUsd: (step: ValidatedStep) => number;
}): PlanFigures {
  const estimatedCostUsd = input.steps.reduce((sum, step) => sum + input.estimateStepCostUsd(step), 0);
  const factors: QualityFactors = {
    structural: 1,
    rejections: 0,
    invalidCalls: 0,
    stepCount: input.steps.length,
    maxSteps: input.maxSteps,
    riskMix: riskMixOf(input.steps.map((step) => step.tool.risk)),
    estimatedCostUsd,
    budgetUsd: input.budget?.maxCostUsd ?? null,
    strategySuccess: null,
  };
  return {
    estimatedCostUsd,
    quality: { score: planQuality(factors), factors },
    strategy: 'human-edit',
    patternIds: [],
  };
}

/** A planned step with the idempotency key its row is stored under. */
export interface StepToStore {
  step: PlannedStep;
  /** `<taskId>:<version>:<key>`: a re-plan's steps never collide with the old ones. */
  idempotencyKey: string;
}

/** The steps of plan version `version`, in execution order, each with a new id from `newId`. */
export function stepsToStore(
  taskId: string,
  version: number,
  steps: readonly ValidatedStep[],
  newId: () => string,
): StepToStore[] {
  return steps.map((step, index) => ({
    step: {
      stepId: newId(),
      key: step.key,
      index,
      tool: step.tool.name,
      arguments: step.arguments,
      riskClass: step.tool.risk,
      sideEffects: step.tool.sideEffects,
      dependsOn: step.dependsOn,
      rationale: step.rationale,
    },
    idempotencyKey: `${taskId}:${version}:${step.key}`,
  }));
}
