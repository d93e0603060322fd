import { randomUUID } from 'node:crypto';
import {
  CloudEventTypes,
  PublicSubjects,
  StepFinished,
  TaskCancelledData,
  TaskCompletedData,
  TaskFailedData,
  TaskReplanRequested,
  boundOutcomeError,
  boundStepValue,
  boundTaskResult,
  type ErrorShape,
  type JsonValue,
  type TaskRequestRef,
} from '@tandem/contracts';
import {
  cancelUnfinishedSteps,
  completeRun,
  endRun,
  enqueueOutbox,
  finishStep,
  insertEndedRun,
  taskRunOf,
  UNFINISHED_RUN_STATUSES,
  type OutboxMessage,
  type StepRunStatus,
  type Tx,
} from '@tandem/db';
import { outboxCloudEvent, outboxEvent } from '@tandem/service-kit';
import { taskResult } from './domain/advance.js';
import { finalOutcome, storedEnd, type TaskEnd, type TaskOutcome } from './domain/outcome.js';
import type { StepState } from './domain/progress.js';
import type { TaskRef } from './domain/run-state.js';
import type { ExecutorDeps } from './deps.js';

/*
 * The executor's writes that end things, in the caller's transaction, and the messages they publish
 * (through the outbox, handed to the relay after COMMIT).
 */

function publisherOptions(deps: Pick<ExecutorDeps, 'prefix'>) {
  return { prefix: deps.prefix, publisher: 'executor' };
}

/** What a task's outcome event says besides the outcome: the plan version and its tools. */
export interface OutcomeExtra {
  planId?: string | null;
  planVersion?: number;
  tools?: string[];
}

/** The outcome CloudEvent and its outbox row. */
export function taskOutcomeMessage(
  deps: Pick<ExecutorDeps, 'prefix'>,
  task: TaskRef,
  request: TaskRequestRef,
  outcome: TaskOutcome,
  extra: { planVersion?: number | undefined; tools?: string[] | undefined },
): OutboxMessage {
  const common = {
    specversion: '1.0' as const,
    id: randomUUID(),
    source: '/tandem/executor',
    time: new Date().toISOString(),
    datacontenttype: 'application/json' as const,
    subject: task.id,
    correlationid: task.id,
  };
  const base = {
    taskId: task.id,
    request,
    kind: task.kind,
    agentId: task.agentId,
    planVersion: extra.planVersion,
    tools: extra.tools,
  };
  const options = publisherOptions(deps);
  if (outcome.status === 'completed') {
    // Bounded: a result too large for the event becomes a typed marker pointing at GET /v1/tasks/:id.
    const data = TaskCompletedData.parse({
      ...base,
      status: 'completed',
      result: boundTaskResult(outcome.result, task.id),
    });
    return outboxCloudEvent(options, PublicSubjects.taskCompleted, {
      ...common,
      type: CloudEventTypes.taskCompleted,
      data,
    });
  }
  if (outcome.status === 'cancelled') {
    const data = TaskCancelledData.parse({
      ...base,
      status: 'cancelled',
      reason: outcome.reason,
      requestedBy: outcome.requestedBy,
    });
    return outboxCloudEvent(options, PublicSubjects.taskCancelled, {
      ...common,
      type: CloudEventTypes.taskCancelled,
      data,
    });
  }
  const data = TaskFailedData.parse({
    ...base,
    status: 'failed',
    error: boundOutcomeError(outcome.error, task.id),
  });
  return outboxCloudEvent(options, PublicSubjects.taskFailed, {
    ...common,
    type: CloudEventTypes.taskFailed,
    data,
  });
}

/**
 * Ends a task once, failed or cancelled (a conditional update guards against a second outcome); its
 * unfinished steps are cancelled and its outcome event enqueued. Runs in the caller's transaction; false
 * when the task had ended already.
 */
export async function endTaskInTx(
  tx: Tx,
  deps: Pick<ExecutorDeps, 'prefix'>,
  task: TaskRef,
  request: TaskRequestRef,
  outcome: TaskEnd,
  extra: OutcomeExtra,
): Promise<boolean> {
  const existing = await taskRunOf(tx, task.id);
  if (existing !== null && !UNFINISHED_RUN_STATUSES.includes(existing.status)) return false;
  const stored = storedEnd(outcome);
  if (existing !== null) {
    if (!(await endRun(tx, task.id, stored))) return false;
  } else {
    await insertEndedRun(tx, { taskId: task.id, planId: extra.planId ?? null, ...stored });
  }
  await cancelUnfinishedSteps(tx, task.id);
  await enqueueOutbox(
    tx,
    taskOutcomeMessage(deps, task, request, finalOutcome(outcome), {
      planVersion: extra.planVersion,
      tools: extra.tools,
    }),
  );
  return true;
}

/** Fails a task once, in the caller's transaction. */
export function failTaskInTx(
  tx: Tx,
  deps: Pick<ExecutorDeps, 'prefix'>,
  task: TaskRef,
  request: TaskRequestRef,
  error: ErrorShape & { stepId?: string },
  extra: OutcomeExtra,
): Promise<boolean> {
  return endTaskInTx(tx, deps, task, request, { status: 'failed', error }, extra);
}

/** How a step ended, as its event says. */
export type StepOutcome = { status: 'completed'; value: JsonValue } | { status: 'failed'; error: ErrorShape };

/** The `step.finished` event of a step. */
export function stepFinishedMessage(
  deps: Pick<ExecutorDeps, 'prefix'>,
  step: { stepId: string; key: string; tool: string },
  taskId: string,
  outcome: StepOutcome,
): OutboxMessage {
  const data =
    outcome.status === 'completed'
      ? {
          taskId,
          stepId: step.stepId,
          key: step.key,
          tool: step.tool,
          status: 'completed' as const,
          // A large value stays in the step's stored result; the event carries a marker (issue 12).
          value: boundStepValue(outcome.value, taskId),
        }
      : {
          taskId,
          stepId: step.stepId,
          key: step.key,
          tool: step.tool,
          status: 'failed' as const,
          error: boundOutcomeError(outcome.error, taskId),
        };
  return outboxEvent(publisherOptions(deps), StepFinished, data, { correlationId: taskId, causationId: null })
    .message;
}

/**
 * Moves a step from one of `from` to completed or failed and enqueues its `step.finished` event, in the
 * caller's transaction; a conditional update, so a step another replica already moved is left alone.
 */
export async function finishStepInTx(
  tx: Tx,
  deps: Pick<ExecutorDeps, 'prefix'>,
  step: Pick<StepState, 'stepId' | 'key' | 'tool'>,
  taskId: string,
  from: readonly StepRunStatus[],
  outcome: StepOutcome,
): Promise<boolean> {
  const end =
    outcome.status === 'completed'
      ? { status: 'completed' as const, value: outcome.value }
      : { status: 'failed' as const, error: outcome.error };
  if (!(await finishStep(tx, { stepId: step.stepId, from, end }))) return false;
  await enqueueOutbox(tx, stepFinishedMessage(deps, step, taskId, outcome));
  return true;
}

/** The `task.replan-requested` event for a run whose step `failed` failed for good with `error`. */
export function replanRequestMessage(
  deps: Pick<ExecutorDeps, 'prefix'>,
  state: { task: { id: string }; plan: { id: string; version: number }; steps: readonly StepState[] },
  failed: Pick<StepState, 'key' | 'tool'>,
  error: ErrorShape,
): OutboxMessage {
  return outboxEvent(
    publisherOptions(deps),
    TaskReplanRequested,
    {
      taskId: state.task.id,
      planId: state.plan.id,
      version: state.plan.version,
      failedStep: {
        key: failed.key,
        tool: failed.tool,
        error: boundOutcomeError({ ...error, retryable: false }, state.task.id),
      },
      completedSteps: state.steps
        .filter((step) => step.status === 'completed')
        .map((step) => ({
          key: step.key,
          tool: step.tool,
          value: boundStepValue(step.result?.value ?? null, state.task.id),
        })),
    },
    { correlationId: state.task.id, causationId: null },
  ).message;
}

/**
 * The `task.cancel-requested` CloudEvent the executor publishes for a task it ended on its own (a passed
 * deadline, an early cancel, a dead letter), so that a running sandbox job is killed and planning stops.
 */
export function cancelRequestMessage(
  deps: Pick<ExecutorDeps, 'prefix'>,
  input: { taskId: string; source: string; time: Date; reason?: string; requestedBy?: string },
): OutboxMessage {
  return outboxCloudEvent(publisherOptions(deps), PublicSubjects.taskCancelRequested, {
    specversion: '1.0',
    id: randomUUID(),
    source: input.source,
    type: CloudEventTypes.taskCancelRequested,
    time: input.time.toISOString(),
    datacontenttype: 'application/json',
    subject: input.taskId,
    data: {
      taskId: input.taskId,
      ...(input.reason === undefined ? {} : { reason: input.reason }),
      ...(input.requestedBy === undefined ? {} : { requestedBy: input.requestedBy }),
    },
  });
}

/**
 * Completes a task whose steps all completed, once, in the caller's transaction, with its result (the
 * last `respond` answer and every step's value); `alongside` are outbox rows of the same transaction,
 * written with the outcome. False when the run was no longer running.
 */
export async function completeTaskInTx(
  tx: Tx,
  deps: Pick<ExecutorDeps, 'prefix'>,
  state: { steps: readonly StepState[] },
  task: TaskRef,
  request: TaskRequestRef,
  extra: OutcomeExtra,
  alongside: readonly OutboxMessage[] = [],
): Promise<boolean> {
  const result = taskResult(state.steps);
  if (!(await completeRun(tx, task.id, result))) {
    if (alongside.length > 0) await enqueueOutbox(tx, alongside);
    return false;
  }
  await enqueueOutbox(tx, [
    ...alongside,
    taskOutcomeMessage(deps, task, request, { status: 'completed', result }, extra),
  ]);
  return true;
}
