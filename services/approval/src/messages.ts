import {
  ApprovalDecided,
  ApprovalRequested,
  ApprovalVerdictRecorded,
  type EventData,
  type JsonValue,
  type Verdict,
} from '@tandem/contracts';
import type { OutboxMessage } from '@tandem/db';
import { outboxEvent } from '@tandem/service-kit';
import type { RequestRow } from './domain/request.js';

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
      editedArguments: verdict.editedArguments ?? request.editedArguments,
      answer: verdict.answer ?? request.answer,
      riskLevel: request.riskLevel,
      riskReasons: request.riskReasons,
      trustAtDecision: request.trustAtDecision,
      mode: request.mode,
      patternIds: step.patternIds,
    },
    { correlationId: request.taskId, causationId },
  ).message;
}

/** The `approval.decided` outbox message for the executor: a human decision or an expiry of `request`. */
export function decidedMessage(
  prefix: string,
  request: RequestRow & { stepId: string },
  decision: Omit<EventData<typeof ApprovalDecided>, 'approvalId' | 'taskId' | 'planId' | 'stepId'>,
): OutboxMessage {
  return outboxEvent(
    { prefix, publisher: 'approval' },
    ApprovalDecided,
    {
      approvalId: request.id,
      taskId: request.taskId,
      planId: request.planId,
      stepId: request.stepId,
      ...decision,
    },
    { correlationId: request.taskId, causationId: null },
  ).message;
}

/** `approval.requested` for a request that (again) waits for a human. */
export function requestedMessage(prefix: string, request: RequestRow): OutboxMessage {
  return outboxEvent(
    { prefix, publisher: 'approval' },
    ApprovalRequested,
    {
      approvalId: request.id,
      taskId: request.taskId,
      planId: request.planId,
      stepId: request.stepId ?? request.id,
      tool: request.tool ?? 'unknown',
      riskClass: request.riskClass ?? 'destructive',
      kind: request.kind,
      ...(request.question === null ? {} : { question: request.question }),
      ...(request.riskLevel === null ? {} : { riskLevel: request.riskLevel }),
      riskReasons: request.riskReasons,
      deadline: request.deadline?.toISOString() ?? null,
      group: request.approverGroup,
      escalationLevel: request.escalationLevel,
    },
    { correlationId: request.taskId, causationId: null },
  ).message;
}
