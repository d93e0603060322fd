import type { PlannedStep, RiskClass } from '@tandem/contracts';

/** How a step is decided when its plan arrives. */
export type InitialDecision =
  { mode: 'auto'; status: 'approved'; reason: string } | { mode: 'human'; status: 'pending'; reason: string };

/**
 * The first approval rule: a step whose tool's risk class is in the auto-approve set is approved
 * automatically; every other step waits for a human. Trust and risk rules refine this later.
 */
export function initialDecision(
  step: Pick<PlannedStep, 'riskClass' | 'tool'>,
  autoApprove: ReadonlySet<RiskClass>,
): InitialDecision {
  if (autoApprove.has(step.riskClass)) {
    return {
      mode: 'auto',
      status: 'approved',
      reason: `risk class ${step.riskClass} is auto-approved by configuration`,
    };
  }
  return { mode: 'human', status: 'pending', reason: `risk class ${step.riskClass} needs a human` };
}
