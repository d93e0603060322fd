import { TaskAccepted, type Envelope, type EventData } from '@tandem/contracts';
import type { ConsumerContext } from '@tandem/bus';
import {
  cancelledBeforeArrival,
  enqueueOutbox,
  loadPlanningTask,
  modelUseOfTask,
  moveTask,
  type TaskModelUse,
} from '@tandem/db';
import { define, type PlannerDeps } from '../consumers.js';
import { afterPlanning, planningStart } from '../domain/planning-decisions.js';
import { initialMessages } from '../domain/planning.js';
import { fetchPatterns } from '../patterns.js';
import { holdPlanningLease } from '../planning-lease.js';
import { heartbeating, planWithModel } from '../planning-loop.js';
import { planFailedMessage, storeModelPlan } from '../plan-store.js';

const NOTHING_SPENT: TaskModelUse = { tokens: 0, costUsd: 0, calls: 0 };

/**
 * Plans an accepted task (`task.accepted.v1`): asks the planning model between transactions, validates
 * every call, sends rejections back a bounded number of times, then stores the plan and its
 * `plan.proposed` (or `plan.failed`) in the message's final transaction. While it plans, the task's
 * planning lease is renewed; a planner's sweep takes over a task whose lease ran out.
 */
export const taskAccepted = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'planner-planning',
  event: TaskAccepted,
  run: planAcceptedTask,
});

async function planAcceptedTask(
  envelope: Envelope<EventData<typeof TaskAccepted>>,
  context: ConsumerContext<PlannerDeps>,
): Promise<void> {
  const { deps, log } = context;
  const { db } = deps;
  const data = envelope.data;
  const start = planningStart(
    data.taskId,
    await loadPlanningTask(db, data.taskId, { consumer: context.inbox, messageId: context.messageId }),
  );
  // A duplicate or a task that moved on: returning records the message (the framework's inbox row).
  if (start.kind === 'duplicate' || start.kind === 'settled') return;
  if (start.kind === 'missing') throw start.error;
  const { task } = start;
  const taskRef = { id: data.taskId, kind: data.kind, agentId: data.agentId, request: data.request };
  if (await cancelledBeforeArrival(db, task)) {
    // The executor kept a cancel that came before the task, and ends the task `cancelled` itself.
    await context.commit((tx) =>
      moveTask(tx, data.taskId, { from: ['accepted', 'planning'], to: 'cancelled' }),
    );
    log.info({ taskId: data.taskId }, 'task cancelled before it arrived; not planned');
    return;
  }
  const releaseLease = holdPlanningLease(deps, data.taskId);
  try {
    const started = Date.now();
    const [, { patterns }, spent] = await Promise.all([
      // Informational (the task is being planned): not worth a WAL flush; a crash just leaves it `accepted`.
      context.transaction((tx) => moveTask(tx, data.taskId, { from: ['accepted'], to: 'planning' }), {
        durable: false,
      }),
      fetchPatterns(
        {
          request: deps.request,
          prefix: deps.prefix,
          timeoutMs: deps.limits.learningTimeoutMs,
          log,
          ...(deps.patternCache === undefined ? {} : { cache: deps.patternCache }),
        },
        { kind: data.kind, agentId: data.agentId, limit: 5 },
      ),
      task.budget === undefined ? Promise.resolve(NOTHING_SPENT) : modelUseOfTask(db, data.taskId),
    ]);
    const result = await planWithModel(
      { ...deps, model: heartbeating(deps.model, context), log },
      {
        taskId: data.taskId,
        messages: initialMessages({ goal: data.goal, input: data.input, kind: data.kind, patterns }),
        keyPrefix: `plan:${data.taskId}:v1`,
        budget: task.budget,
        preference: task.preferences,
        deadline: task.deadline,
        mayRetry: !context.lastDelivery,
        spent,
      },
    );
    const effect = afterPlanning(result);
    const planningMs = Date.now() - started;
    switch (effect.kind) {
      case 'retry':
        throw effect.error;
      case 'settle':
        log.info({ taskId: data.taskId }, 'task cancelled while planning; no plan stored');
        return;
      case 'store': {
        const stored = await context.commit(async (tx) => {
          if (!(await moveTask(tx, data.taskId, { from: ['accepted', 'planning'], to: 'planned' })))
            return null;
          return storeModelPlan(deps, tx, {
            task: taskRef,
            budget: task.budget,
            version: 1,
            origin: 'model',
            supersedes: null,
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
        log.info(
          {
            taskId: data.taskId,
            planId: stored.value.planId,
            steps: effect.steps.length,
            repairs: effect.attempts - 1,
          },
          'plan proposed',
        );
        return;
      }
      case 'fail':
        await context.commit(async (tx) => {
          const failed = await moveTask(tx, data.taskId, {
            from: ['accepted', 'planning'],
            to: 'failed',
            error: effect.error,
          });
          if (failed) await enqueueOutbox(tx, planFailedMessage(deps, taskRef, effect.error, envelope.id));
        });
        deps.onPlanned?.('failed', { repairs: effect.repairs, ms: planningMs, quality: null });
        log.warn({ taskId: data.taskId, code: effect.error.code }, 'planning failed');
        return;
    }
  } finally {
    releaseLease();
  }
}
