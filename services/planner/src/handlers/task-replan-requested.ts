import { TaskReplanRequested, taskRequestRef, type Envelope, type EventData } from '@tandem/contracts';
import type { ConsumerContext } from '@tandem/bus';
import { enqueueOutbox, loadPlanningTask, planState } from '@tandem/db';
import { define, type PlannerDeps } from '../consumers.js';
import { afterReplanning, replanningStart } from '../domain/planning-decisions.js';
import { initialMessages, replanMessage } from '../domain/planning.js';
import { fetchPatterns } from '../patterns.js';
import { holdPlanningLease } from '../planning-lease.js';
import { heartbeating, planWithModel } from '../planning-loop.js';
import { planFailedMessage, storeModelPlan } from '../plan-store.js';

/**
 * Makes the one new plan the executor asks for (`task.replan-requested.v1`) after a step failed for
 * good: the model sees the failure and what already completed; the new version supersedes the failed
 * one, or `plan.failed` ends the task.
 */
export const taskReplanRequested = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'planner-replan',
  event: TaskReplanRequested,
  run: replan,
});

async function replan(
  envelope: Envelope<EventData<typeof TaskReplanRequested>>,
  context: ConsumerContext<PlannerDeps>,
): Promise<void> {
  const { deps, log } = context;
  const { db } = deps;
  const data = envelope.data;
  // Before any model call: a redelivery of a handled request costs nothing.
  if (await context.processed()) return;
  const start = replanningStart(
    data.taskId,
    await loadPlanningTask(db, data.taskId),
    await planState(db, data.planId),
  );
  if (start.kind === 'settled') return;
  if (start.kind === 'missing') throw start.error;
  const { task, version } = start;
  const taskRef = { id: task.id, kind: task.kind, agentId: task.agentId, request: taskRequestRef(task) };
  const releaseLease = holdPlanningLease(deps, task.id);
  try {
    const started = Date.now();
    const { patterns } = await fetchPatterns(
      { request: deps.request, prefix: deps.prefix, timeoutMs: deps.limits.learningTimeoutMs, log },
      { kind: task.kind, agentId: task.agentId, limit: 5 },
    );
    const result = await planWithModel(
      { ...deps, model: heartbeating(deps.model, context), log },
      {
        taskId: task.id,
        messages: [
          ...initialMessages({
            goal: task.goal,
            input: task.input === null ? undefined : task.input,
            kind: task.kind,
            patterns,
          }),
          replanMessage(data),
        ],
        keyPrefix: `plan:${task.id}:v${version}`,
        budget: task.budget,
        preference: task.preferences,
        deadline: task.deadline,
        mayRetry: !context.lastDelivery,
      },
    );
    const effect = afterReplanning(result, data);
    const planningMs = Date.now() - started;
    switch (effect.kind) {
      case 'retry':
        throw effect.error;
      case 'settle':
        return;
      case 'store': {
        const stored = await context.commit(async (tx) => {
          // The failed version must still be the active one (an edit may have replaced it meanwhile).
          if ((await planState(tx, data.planId))?.status !== 'active') return null;
          return storeModelPlan(deps, tx, {
            task: taskRef,
            budget: task.budget,
            version,
            origin: 'replan',
            supersedes: data.planId,
            steps: effect.steps,
            attempts: effect.attempts,
            invalidCalls: effect.invalidCalls,
            models: effect.models,
            patterns,
            planningMs,
            causationId: envelope.id,
          });
        });
        if (stored.duplicate || stored.value === null) return;
        deps.onPlanned?.('proposed', {
          repairs: effect.attempts - 1,
          ms: planningMs,
          quality: stored.value.quality,
        });
        log.info({ taskId: task.id, planId: stored.value.planId, version }, 're-plan proposed');
        return;
      }
      case 'fail':
        await context.commit((tx) =>
          enqueueOutbox(tx, planFailedMessage(deps, taskRef, effect.error, envelope.id)),
        );
        deps.onPlanned?.('failed', { repairs: effect.repairs, ms: planningMs, quality: null });
        log.warn({ taskId: task.id, code: effect.error.code }, 're-planning failed');
        return;
    }
  } finally {
    releaseLease();
  }
}
