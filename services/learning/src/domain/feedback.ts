import type { ApprovalVerdictRecorded, Envelope, EventData, Verdict } from '@tandem/contracts';

/** The Feedback row a human verdict is kept as (kind `verdict`), without its id. */
export interface VerdictFeedback {
  taskId: string;
  stepId: string;
  approvalId: string;
  verdict: Verdict;
  comment: string | null;
  /** Everything later learning needs: agent, plan, tool, decision, arguments, risk, trust, patterns. */
  data: Record<string, unknown>;
  sourceEventId: string;
}

/**
 * What a recorded verdict stores: the step, its risk and trust at the time and the patterns that shaped
 * its plan. Turning verdicts into patterns is later work; the row keeps everything it will need.
 */
export function verdictFeedback(
  envelope: Envelope<EventData<typeof ApprovalVerdictRecorded>>,
): VerdictFeedback {
  const verdict = envelope.data;
  return {
    taskId: verdict.taskId,
    stepId: verdict.stepId,
    approvalId: verdict.approvalId,
    verdict: verdict.verdict,
    comment: verdict.reason,
    data: {
      agentId: verdict.agentId,
      planId: verdict.planId,
      tool: verdict.tool,
      actionClass: verdict.actionClass,
      decidedBy: verdict.decidedBy,
      mode: verdict.mode,
      arguments: verdict.arguments,
      editedArguments: verdict.editedArguments,
      answer: verdict.answer,
      riskLevel: verdict.riskLevel,
      riskReasons: verdict.riskReasons,
      trustAtDecision: verdict.trustAtDecision,
      patternIds: verdict.patternIds,
      occurredAt: envelope.occurredAt,
    },
    sourceEventId: envelope.id,
  };
}
