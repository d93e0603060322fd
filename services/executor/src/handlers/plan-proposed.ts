import type { Envelope, EventData, PlanProposed } from '@tandem/contracts';
import { markProcessed } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { advanceTask, type AdvanceDeps } from '../advance.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_PLAN_CONSUMER = 'executor-plan-proposed';

/**
 * Starts the run of a plan: the task's run row and a waiting state per step. Approvals may arrive before
 * the plan (another consumer), so step rows are created without overwriting an earlier decision.
 */
export async function handlePlanProposed(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof PlanProposed>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const plan = envelope.data;
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, EXECUTOR_PLAN_CONSUMER, context.messageId))) return;
    const existing = await tx.taskRun.findUnique({ where: { taskId: plan.taskId } });
    if (!existing)
      await tx.taskRun.create({ data: { taskId: plan.taskId, planId: plan.planId, status: 'running' } });
    await tx.stepRun.createMany({
      data: plan.steps.map((step) => ({ stepId: step.stepId, taskId: plan.taskId, status: 'waiting' })),
      skipDuplicates: true,
    });
  });
  await advanceTask(deps, plan.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}
