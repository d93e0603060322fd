import type { Envelope, EventData, PlanProposed } from '@tandem/contracts';
import { markProcessed } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { advanceTask, UNFINISHED_RUN, type AdvanceDeps } from '../advance.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_PLAN_CONSUMER = 'executor-plan-proposed';

/**
 * Starts the run of a plan version: the task's run row and a waiting state per step. Approvals may arrive
 * before the plan (another consumer), so step rows are created without overwriting an earlier decision.
 * A newer version (a human edit or a re-plan) replaces the running one; the old version's unfinished steps
 * are superseded. An older version arriving late changes nothing.
 */
export async function handlePlanProposed(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof PlanProposed>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const plan = envelope.data;
  let switched = false;
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, EXECUTOR_PLAN_CONSUMER, context.messageId))) return;
    const existing = await tx.taskRun.findUnique({ where: { taskId: plan.taskId } });
    if (!existing) {
      await tx.taskRun.create({ data: { taskId: plan.taskId, planId: plan.planId, status: 'running' } });
    } else {
      if (!UNFINISHED_RUN.includes(existing.status) || existing.planId === plan.planId) {
        if (existing.planId !== plan.planId) return;
      } else {
        const current =
          existing.planId === null
            ? null
            : await tx.plan.findUnique({ where: { id: existing.planId }, select: { version: true } });
        if (current !== null && current.version >= plan.version) return;
        await tx.taskRun.updateMany({
          where: { taskId: plan.taskId, status: { in: UNFINISHED_RUN } },
          data: { planId: plan.planId, status: 'running' },
        });
        if (existing.planId !== null) {
          await tx.stepRun.updateMany({
            where: { step: { planId: existing.planId }, status: { in: ['waiting', 'approved', 'fixing'] } },
            data: { status: 'superseded', finishedAt: new Date() },
          });
        }
        switched = true;
      }
    }
    await tx.stepRun.createMany({
      data: plan.steps.map((step) => ({ stepId: step.stepId, taskId: plan.taskId, status: 'waiting' })),
      skipDuplicates: true,
    });
  });
  if (switched)
    context.log.info(
      { taskId: plan.taskId, version: plan.version, origin: plan.origin },
      'plan version replaced',
    );
  await advanceTask(deps, plan.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}
