import type { ApproverWebhookPayload, ApproverWebhookType, JsonValue } from '@tandem/contracts';
import type { Tx } from '@tandem/db';
import type { RequestRow } from './domain/request.js';
import { deliveriesFor, storeDeliveries, type WebhookEndpoint } from './webhooks/delivery.js';

/** The body approvers receive (Standard Webhooks: `type`, `timestamp`, `data`). */
export function approverPayload(
  type: ApproverWebhookType,
  request: RequestRow,
  step: { arguments: Record<string, JsonValue> } | null,
  now: Date,
): ApproverWebhookPayload {
  return {
    type,
    timestamp: now.toISOString(),
    data: {
      approvalId: request.id,
      taskId: request.taskId,
      stepId: request.stepId,
      agentId: request.agentId,
      tool: request.tool,
      arguments: step?.arguments ?? null,
      kind: request.kind,
      question: request.question,
      riskLevel: request.riskLevel,
      riskReasons: request.riskReasons,
      trust: request.trustAtDecision,
      group: request.approverGroup,
      deadline: request.deadline?.toISOString() ?? null,
      escalationLevel: request.escalationLevel,
    },
  };
}

/**
 * Queues signed webhooks to the endpoints serving the request's group, in the caller's transaction (the
 * delivery loop sends them). `discriminator` makes the webhook id deterministic per notification, so a
 * handler that runs twice queues each notification once (a conflict skips the row). Returns how many.
 */
export async function queueApproverWebhooks(
  tx: Tx,
  endpoints: readonly WebhookEndpoint[],
  type: ApproverWebhookType,
  request: RequestRow,
  step: { arguments: Record<string, JsonValue> } | null,
  discriminator: string,
): Promise<number> {
  if (endpoints.length === 0) return 0;
  const now = new Date();
  const rows = deliveriesFor({
    endpoints,
    group: request.approverGroup,
    type,
    approvalId: request.id,
    discriminator,
    payload: approverPayload(type, request, step, now),
    now,
  });
  return storeDeliveries(tx, rows);
}
