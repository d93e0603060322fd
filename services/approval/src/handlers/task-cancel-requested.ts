import { randomUUID } from 'node:crypto';
import type { TaskCancelRequestedCloudEvent } from '@tandem/contracts';
import { markProcessedPrisma, type Db } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { TASK_CANCELLED_ACTION, lockTask } from '../store.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const TASK_CANCEL_REQUESTED_CONSUMER = 'approval-task-cancel-requested';

/**
 * The message id of a CloudEvent: `source` + `id` is its idempotency key (the same rule as the
 * planner's intake, so a key means the same thing in every service's ProcessedMessage rows).
 */
export function cloudEventMessageId(event: { source: string; id: string }): string {
  return `ce:${JSON.stringify([event.source, event.id])}`;
}

/**
 * Cancels a task's waiting approvals: every `pending` request of the task becomes `cancelled` (an audit
 * row each, no `approval.decided`: the executor stops the task on the same cancel request), and a
 * task-level audit row makes plans arriving later create nothing. The task is named by its id or by
 * the CloudEvent that requested it; an unknown task is acknowledged and logged, nothing else.
 */
export async function handleTaskCancelRequested(
  deps: { db: Db; onCancelled?: (count: number) => void },
  event: TaskCancelRequestedCloudEvent,
  context: { messageId: string; log: Log },
): Promise<void> {
  const { data } = event;
  const taskId = await resolveTaskId(deps.db, data);
  if (taskId === null) {
    context.log.warn(
      { byTaskId: data.taskId ?? null, byRequest: data.request ?? null, source: event.source },
      'cancel requested for an unknown task; ignored',
    );
    return;
  }
  const actor = data.requestedBy ?? null;
  const reason = data.reason ? `task cancelled: ${data.reason}` : 'task cancelled';
  const result = await deps.db.prisma.$transaction(async (tx) => {
    await lockTask(tx, taskId);
    if (!(await markProcessedPrisma(tx, TASK_CANCEL_REQUESTED_CONSUMER, context.messageId))) return null;
    const pending = await tx.approvalRequest.findMany({
      where: { taskId, status: { in: ['pending', 'awaiting-values'] } },
      orderBy: { createdAt: 'asc' },
    });
    const now = new Date();
    const cancelled: string[] = [];
    for (const request of pending) {
      // Conditional like a human decision: one that committed first keeps its request.
      const updated = await tx.approvalRequest.updateMany({
        where: { id: request.id, status: request.status },
        data: { status: 'cancelled', decidedAt: now, decidedBy: actor, reason },
      });
      if (updated.count === 0) continue;
      await tx.auditLog.create({
        data: {
          id: randomUUID(),
          service: 'approval',
          action: 'approval.cancelled',
          subjectType: 'step',
          subjectId: request.stepId ?? request.id,
          actor,
          reason,
          data: { approvalId: request.id, taskId, planId: request.planId },
        },
      });
      cancelled.push(request.id);
    }
    await tx.auditLog.create({
      data: {
        id: randomUUID(),
        service: 'approval',
        action: TASK_CANCELLED_ACTION,
        subjectType: 'task',
        subjectId: taskId,
        actor,
        reason,
        data: { cancelled, event: { source: event.source, id: event.id } },
      },
    });
    return cancelled.length;
  });
  if (result === null) {
    context.log.info({ taskId }, 'cancel request already handled');
    return;
  }
  deps.onCancelled?.(result);
  context.log.info({ taskId, cancelled: result }, 'pending approvals cancelled');
}

async function resolveTaskId(db: Db, data: TaskCancelRequestedCloudEvent['data']): Promise<string | null> {
  if (data.taskId !== undefined) {
    const task = await db.prisma.task.findUnique({ where: { id: data.taskId }, select: { id: true } });
    if (task) return task.id;
    // Requests name the task too: enough to cancel them even without the planner's row.
    const request = await db.prisma.approvalRequest.findFirst({
      where: { taskId: data.taskId },
      select: { taskId: true },
    });
    return request?.taskId ?? null;
  }
  if (data.request !== undefined) {
    const task = await db.prisma.task.findUnique({
      where: { source_externalId: { source: data.request.source, externalId: data.request.id } },
      select: { id: true },
    });
    return task?.id ?? null;
  }
  return null;
}
