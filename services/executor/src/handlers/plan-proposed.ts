import { PlanProposed } from '@tandem/contracts';
import { createWaitingSteps, insertRunningRun, lockTaskRun, supersedeSteps, switchRunPlan } from '@tandem/db';
import { advanceTask } from '../advance.js';
import { define } from '../consumers.js';
import { advancesAfterPlan, planArrival, planStart } from '../domain/plan-version.js';
import { applyEarlyCancels } from '../early-cancels.js';

/**
 * `plan.proposed`: starts the run of a plan version, the task's run row and a waiting state per step.
 * Approvals may arrive before the plan (another consumer), so step rows are created without overwriting
 * an earlier decision. A newer version (a human edit or a re-plan) replaces the running one; the old
 * version's unfinished steps are superseded. An older version arriving late changes nothing. Then the
 * task moves on, unless every step waits for its decision.
 */
export const planProposed = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'executor-plan-proposed',
  event: PlanProposed,
  async run(envelope, context) {
    const plan = envelope.data;
    const { deps } = context;
    // A cancel that came before the task ends it now, before a step of this plan can start.
    await applyEarlyCancels(deps, context.log, { taskId: plan.taskId });
    const committed = await context.commit(async (tx) => {
      const arrival = planArrival(await lockTaskRun(tx, plan.taskId), plan);
      if (arrival.kind === 'ended' || arrival.kind === 'older') return planStart(arrival, 0, 0);
      if (arrival.kind === 'start') await insertRunningRun(tx, { taskId: plan.taskId, planId: plan.planId });
      if (arrival.kind === 'switch') {
        await switchRunPlan(tx, { taskId: plan.taskId, planId: plan.planId });
        if (arrival.supersede !== null) await supersedeSteps(tx, arrival.supersede);
      }
      const created = await createWaitingSteps(tx, {
        taskId: plan.taskId,
        stepIds: plan.steps.map((step) => step.stepId),
      });
      return planStart(arrival, created, plan.steps.length);
    });
    const start = committed.duplicate ? 'duplicate' : committed.value;
    if (start === 'switched')
      context.log.info(
        { taskId: plan.taskId, version: plan.version, origin: plan.origin },
        'plan version replaced',
      );
    if (!advancesAfterPlan(start)) return;
    await advanceTask(deps, plan.taskId, context.log, { lastDelivery: context.lastDelivery });
  },
});
