import { randomUUID } from 'node:crypto';
import {
  ApprovalDecided,
  ApprovalRequested,
  type Envelope,
  type EventData,
  type PlanProposed,
  type RiskClass,
} from '@tandem/contracts';
import { enqueueOutbox, markProcessed, type Db, type OutboxMessage } from '@tandem/db';
import { outboxEvent, type Log } from '@tandem/service-kit';
import { initialDecision } from '../domain/decide.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const PLAN_PROPOSED_CONSUMER = 'approval-plan-proposed';

/**
 * Creates one approval request per step: auto-approved steps are decided at once, the others wait in
 * Postgres for a human. Requests, audit rows and events commit together; a redelivered plan changes nothing.
 */
export async function handlePlanProposed(
  deps: {
    db: Db;
    prefix: string;
    autoApprove: ReadonlySet<RiskClass>;
    kick: () => void;
    onDecision?: (mode: 'auto' | 'human') => void;
  },
  envelope: Envelope<EventData<typeof PlanProposed>>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const plan = envelope.data;
  let created = 0;
  const modes: Array<'auto' | 'human'> = [];
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, PLAN_PROPOSED_CONSUMER, context.messageId))) return;
    const existing = await tx.approvalRequest.findMany({
      where: { stepId: { in: plan.steps.map((step) => step.stepId) } },
      select: { stepId: true },
    });
    const seen = new Set(existing.map((row) => row.stepId));
    const messages: OutboxMessage[] = [];
    const now = new Date();
    for (const step of plan.steps) {
      if (seen.has(step.stepId)) continue;
      const decision = initialDecision(step, deps.autoApprove);
      const approvalId = randomUUID();
      await tx.approvalRequest.create({
        data: {
          id: approvalId,
          taskId: plan.taskId,
          planId: plan.planId,
          stepId: step.stepId,
          agentId: plan.agentId,
          tool: step.tool,
          riskClass: step.riskClass,
          mode: decision.mode,
          status: decision.status,
          reason: decision.reason,
          ...(decision.mode === 'auto' ? { decidedAt: now, decidedBy: 'policy:auto-approve' } : {}),
        },
      });
      await tx.auditLog.create({
        data: {
          id: randomUUID(),
          service: 'approval',
          action: decision.mode === 'auto' ? 'approval.auto-approved' : 'approval.requested',
          subjectType: 'step',
          subjectId: step.stepId,
          actor: decision.mode === 'auto' ? 'policy:auto-approve' : null,
          reason: decision.reason,
          data: { approvalId, taskId: plan.taskId, tool: step.tool, riskClass: step.riskClass },
        },
      });
      const meta = { correlationId: plan.taskId, causationId: envelope.id };
      const options = { prefix: deps.prefix, publisher: 'approval' };
      if (decision.mode === 'auto') {
        messages.push(
          outboxEvent(
            options,
            ApprovalDecided,
            {
              approvalId,
              taskId: plan.taskId,
              planId: plan.planId,
              stepId: step.stepId,
              decision: 'approved',
              mode: 'auto',
              decidedBy: 'policy:auto-approve',
              reason: decision.reason,
            },
            meta,
          ).message,
        );
      } else {
        messages.push(
          outboxEvent(
            options,
            ApprovalRequested,
            {
              approvalId,
              taskId: plan.taskId,
              planId: plan.planId,
              stepId: step.stepId,
              tool: step.tool,
              riskClass: step.riskClass,
            },
            meta,
          ).message,
        );
      }
      modes.push(decision.mode);
      created += 1;
    }
    if (messages.length > 0) await enqueueOutbox(tx, messages);
  });
  if (created > 0) deps.kick();
  for (const mode of modes) deps.onDecision?.(mode);
  context.log.info(
    {
      taskId: plan.taskId,
      planId: plan.planId,
      requests: created,
      human: modes.filter((mode) => mode === 'human').length,
    },
    'approval requests created',
  );
}
