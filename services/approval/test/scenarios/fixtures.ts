import type { JsonValue, PlannedStep } from '@tandem/contracts';
import { assessRisk, type RiskAssessment } from '../../src/domain/risk.js';
import { planOf, steps, type StepDraft } from '../../eval/scenarios.js';

export { planOf, steps };

/** An ordinary task. */
export const TASK = { kind: 'general', goal: 'routine work' };

/** The risk of the last draft in a plan of these drafts. */
export function riskOfLast(
  drafts: StepDraft[],
  task: { kind: string; goal?: string; input?: JsonValue | null } = TASK,
): RiskAssessment {
  const plan = planOf(...drafts);
  const step = plan.at(-1);
  if (step === undefined) throw new Error('empty plan');
  return assessRisk(step, { plan, task });
}

/** The risk of one step alone. */
export function riskOf(draft: StepDraft, task = TASK): RiskAssessment {
  return riskOfLast([draft], task);
}

/** The rule ids of an assessment. */
export function rules(assessment: RiskAssessment): string[] {
  return assessment.reasons.map((reason) => reason.rule);
}

/** A plan's step by key. */
export function stepOf(plan: readonly PlannedStep[], key: string): PlannedStep {
  const step = plan.find((candidate) => candidate.key === key);
  if (step === undefined) throw new Error(`no step ${key}`);
  return step;
}
