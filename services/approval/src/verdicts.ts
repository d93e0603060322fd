import { ApprovalVerdictRecorded, type JsonValue, type Verdict } from '@tandem/contracts';
import type { OutboxMessage } from '@tandem/db';
import { outboxEvent } from '@tandem/service-kit';
import { argumentsOf, riskLevelOf, riskReasonsOf, type RequestRow } from './requests.js';

/** The `approval.verdict-recorded` outbox message for learning: what was decided, on what, at what risk and trust. */
export function verdictMessage(
  prefix: string,
  request: RequestRow,
  step: { tool: string; arguments: Record<string, JsonValue>; patternIds: string[] },
  verdict: {
    verdict: Verdict;
    reason: string | null;
    decidedBy: string | null;
    editedArguments?: Record<string, JsonValue> | null;
    answer?: string | null;
  },
  causationId: string | null = null,
): OutboxMessage {
  return outboxEvent(
    { prefix, publisher: 'approval' },
    ApprovalVerdictRecorded,
    {
      approvalId: request.id,
      taskId: request.taskId,
      planId: request.planId,
      stepId: request.stepId ?? request.id,
      agentId: request.agentId,
      tool: step.tool,
      actionClass: request.actionClass ?? step.tool,
      verdict: verdict.verdict,
      reason: verdict.reason,
      decidedBy: verdict.decidedBy,
      arguments: step.arguments,
      editedArguments: verdict.editedArguments ?? argumentsOf(request.editedArguments),
      answer: verdict.answer ?? request.answer,
      riskLevel: riskLevelOf(request.riskLevel),
      riskReasons: riskReasonsOf(request.riskReasons),
      trustAtDecision: request.trustAtDecision,
      mode: request.mode === 'auto' ? 'auto' : 'human',
      patternIds: step.patternIds,
    },
    { correlationId: request.taskId, causationId },
  ).message;
}
