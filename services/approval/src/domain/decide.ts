import type { PlannedStep, RiskClass } from '@tandem/contracts';
import { ASK_HUMAN_TOOL, parseQuestion } from './question.js';

/** How a step is decided when its plan arrives. */
export type InitialDecision =
  | { kind: 'approval'; mode: 'auto'; status: 'approved'; reason: string; decidedBy: string }
  | { kind: 'approval'; mode: 'human'; status: 'pending'; reason: string }
  | {
      kind: 'question';
      mode: 'human';
      status: 'pending';
      reason: string;
      question: string;
      choices: string[] | null;
    }
  | { kind: 'question'; mode: 'auto'; status: 'rejected'; reason: string; decidedBy: string };

/**
 * The first approval rule. An `ask_human` step is always a question for a human, whatever the
 * auto-approve set says (an unreadable question is rejected at once, so the task fails with a reason
 * instead of waiting for an answer nobody can give). Otherwise a step whose tool's risk class is in the
 * auto-approve set is approved automatically and every other step waits for a human. Trust and risk
 * rules refine this later.
 */
export function initialDecision(
  step: Pick<PlannedStep, 'riskClass' | 'tool' | 'arguments'>,
  autoApprove: ReadonlySet<RiskClass>,
): InitialDecision {
  if (step.tool === ASK_HUMAN_TOOL) {
    const asked = parseQuestion(step.arguments);
    if (asked === null) {
      return {
        kind: 'question',
        mode: 'auto',
        status: 'rejected',
        decidedBy: 'policy:invalid-question',
        reason: `${ASK_HUMAN_TOOL} arguments hold no question (a non-empty string) or choices are not strings`,
      };
    }
    return {
      kind: 'question',
      mode: 'human',
      status: 'pending',
      reason: `${ASK_HUMAN_TOOL} waits for a human's answer`,
      question: asked.question,
      choices: asked.choices,
    };
  }
  if (autoApprove.has(step.riskClass)) {
    return {
      kind: 'approval',
      mode: 'auto',
      status: 'approved',
      decidedBy: 'policy:auto-approve',
      reason: `risk class ${step.riskClass} is auto-approved by configuration`,
    };
  }
  return {
    kind: 'approval',
    mode: 'human',
    status: 'pending',
    reason: `risk class ${step.riskClass} needs a human`,
  };
}
