import type { ApproverWebhookPayload, ApproverWebhookType, JsonValue } from '@tandem/contracts';
import { insertRows, utcWallClock, type Sql, type SqlColumn, toJsonText } from '@tandem/db';
import { requestKindOf } from './domain/human-decision.js';
import { riskLevelOf, riskReasonsOf, type RequestRow } from './requests.js';
import { deliveriesFor, type WebhookEndpoint } from './webhooks/delivery.js';

const DELIVERY_COLUMNS: SqlColumn[] = [
  { name: 'id', cast: 'uuid' },
  { name: 'webhookId' },
  { name: 'url' },
  { name: 'event' },
  { name: 'payload', cast: 'jsonb' },
  { name: 'status' },
  { name: 'attempts', cast: 'int' },
  { name: 'nextAttemptAt', cast: 'timestamp' },
  { name: 'endpoint' },
  { name: 'approvalId', cast: 'uuid' },
  { name: 'createdAt', cast: 'timestamp' },
  { name: 'updatedAt', cast: 'timestamp' },
];

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
      kind: requestKindOf(request.kind),
      question: request.question,
      riskLevel: riskLevelOf(request.riskLevel),
      riskReasons: riskReasonsOf(request.riskReasons),
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
 * handler that runs twice queues each notification once (`ON CONFLICT DO NOTHING`). Returns how many.
 */
export async function queueApproverWebhooks(
  sql: Sql,
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
  if (rows.length === 0) return 0;
  const stamp = utcWallClock(now);
  return insertRows(
    sql,
    'WebhookDelivery',
    DELIVERY_COLUMNS,
    rows.map((row) => [
      row.id,
      row.webhookId,
      row.url,
      row.event,
      toJsonText(row.payload),
      row.status,
      row.attempts,
      stamp,
      row.endpoint,
      row.approvalId,
      stamp,
      stamp,
    ]),
    'ON CONFLICT DO NOTHING',
  );
}
