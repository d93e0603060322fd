import type { TaskCancelRequestedCloudEvent, TaskOutcomeCloudEvent } from '@tandem/contracts';
import { markProcessed, type Db } from '@tandem/db';
import { findCancelTarget, type Log } from '@tandem/service-kit';

/** Consumer of `task.cancel-requested.v1` (wire name). */
export const PLANNER_CANCEL_CONSUMER = 'planner-task-cancel-requested';
/** Consumers of the outcome subjects, one per subject (wire names). */
export const PLANNER_OUTCOME_CONSUMERS = {
  completed: 'planner-task-completed',
  failed: 'planner-task-failed',
  cancelled: 'planner-task-cancelled',
} as const;

/**
 * Stops planning a cancelled task: a task still being planned is marked `cancelled`, so no plan is
 * stored for it (planning checks the status before each model call and when it stores the plan).
 * The executor publishes the task's `task.cancelled` outcome.
 */
export async function handleCancelRequested(
  deps: { db: Db },
  event: TaskCancelRequestedCloudEvent,
  context: { messageId: string; log: Log },
): Promise<void> {
  const taskId = await findCancelTarget(deps.db, event.data);
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, PLANNER_CANCEL_CONSUMER, context.messageId))) return;
    if (taskId === null) return;
    await tx.task.updateMany({
      where: { id: taskId, status: { in: ['accepted', 'planning'] } },
      data: { status: 'cancelled' },
    });
  });
  if (taskId === null) context.log.warn({ eventId: event.id }, 'cancel requested for an unknown task');
}

/**
 * Stores a task's actual outcome beside the quality score of the plan version that ran, so the score can
 * be checked against outcomes.
 */
export async function handleTaskOutcome(
  deps: { db: Db },
  event: TaskOutcomeCloudEvent,
  context: { consumer: string; messageId: string },
): Promise<void> {
  const data = event.data;
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, context.consumer, context.messageId))) return;
    const plan = await tx.plan.findFirst({
      where: {
        taskId: data.taskId,
        ...(data.planVersion === undefined ? {} : { version: data.planVersion }),
      },
      orderBy: { version: 'desc' },
      select: { id: true },
    });
    if (!plan) return;
    await tx.planMetrics.updateMany({
      where: { planId: plan.id, outcome: null },
      data: { outcome: data.status, outcomeAt: new Date(event.time) },
    });
  });
}
