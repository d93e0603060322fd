import { ErrorCodes, ErrorShape, JsonValue, taskRequestRef } from '@tandem/contracts';
import {
  attemptJobOf,
  claimStaleReplanning,
  countSandboxRequest,
  enqueueOutbox,
  expireAttempt,
  newestSandboxResultAt,
  parseStored,
  quietRunningTasks,
  quietUnrunTasks,
  staleReplanningTasks,
  staleSteps,
  taskInput,
  taskOutcomeRef,
  taskRunOf,
  touchRunningCodeStep,
  touchRunningRun,
  transaction,
  workspaceEntries,
} from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { z } from 'zod';
import { advanceTask } from './advance.js';
import type { ExecutorDeps } from './deps.js';
import type { TaskEnd } from './domain/outcome.js';
import { nextAction } from './domain/progress.js';
import { staleStepAction, stuckReason, unrunOutcome, type StepLeases } from './domain/stale-work.js';
import { endTaskInTx, failTaskInTx, finishStepInTx, replanRequestMessage } from './outcomes.js';
import { sandboxJobMessage } from './runners/run-code.js';
import { loadState } from './state.js';

const RunCodeLanguage = z.object({ language: z.enum(['javascript', 'python']) });

/**
 * Takes over work a stopped replica left behind, on the step lease (`staleStepAction` has the rule per
 * tool): a stale `generating` claim is taken over by advancing the task; a lost sandbox job is requested
 * again with the same idempotency key, then failed; an interrupted `http_request` fails. Every change is
 * conditional on the row being as read, so replicas sweeping together do each thing once.
 */
export async function sweepStaleSteps(
  deps: ExecutorDeps,
  log: Log,
  leases: StepLeases,
  now: Date = new Date(),
): Promise<number> {
  const before = (ms: number) => new Date(now.getTime() - ms);
  // Asked first, so that queued jobs are not even read: they would crowd out the stale steps behind them.
  const sandboxDraining = await sandboxResultSince(deps, before(leases.leaseMs));
  const stale = await staleSteps(deps.db, {
    before: before(leases.leaseMs),
    httpBefore: before(leases.leaseMs + leases.httpTimeoutMs),
    codeBefore: sandboxDraining ? null : before(leases.leaseMs + leases.sandboxTimeoutMs),
    limit: 100,
  });
  let handled = 0;
  for (const row of stale) {
    const attempt =
      row.tool === 'run_code' && row.status === 'running'
        ? await attemptJobOf(deps.db, { stepId: row.stepId, attempt: row.attempts })
        : null;
    const action = staleStepAction(
      {
        status: row.status,
        tool: row.tool,
        ageMs: now.getTime() - row.updatedAt.getTime(),
        requests: attempt?.requests ?? 1,
      },
      leases,
      sandboxDraining,
    );
    const step = { stepId: row.stepId, key: row.stepKey, tool: row.tool };
    if (action.kind === 'none') continue;
    if (action.kind === 'resend') {
      const sandboxKey = attempt?.sandboxKey ?? `${row.stepId}:${row.attempts}`;
      const args = parseStored(RunCodeLanguage, row.arguments, `StepRun.arguments of step ${row.stepId}`);
      const resent = await transaction(deps.db, async (tx) => {
        const claimed = await touchRunningCodeStep(tx, {
          stepId: row.stepId,
          attempts: row.attempts,
          updatedAt: row.updatedAt,
          now,
        });
        if (!claimed) return false;
        await countSandboxRequest(tx, { stepId: row.stepId, attempt: row.attempts });
        const task = await taskInput(tx, row.taskId);
        if (task === null) throw new Error(`task ${row.taskId} of step ${row.stepId} is not stored`);
        await enqueueOutbox(
          tx,
          sandboxJobMessage(deps, {
            sandboxKey,
            taskId: row.taskId,
            stepId: row.stepId,
            language: args.language,
            code: attempt?.code ?? row.code ?? '',
            input: parseStored(JsonValue.nullable(), task.input, `Task.input of task ${row.taskId}`),
            files: await workspaceEntries(tx, row.taskId),
          }),
        );
        return true;
      });
      if (resent) {
        handled += 1;
        log.warn(
          { taskId: row.taskId, step: step.key, sandboxKey, requests: (attempt?.requests ?? 1) + 1 },
          'sandbox job not answered within its lease; requested again with the same idempotency key',
        );
      }
      continue;
    }
    if (action.kind === 'fail') {
      const error = action.error;
      const failed = await transaction(deps.db, (tx) =>
        finishStepInTx(tx, deps, step, row.taskId, ['running'], { status: 'failed', error }),
      );
      if (!failed) continue;
      if (row.tool === 'run_code')
        await expireAttempt(deps.db, { stepId: row.stepId, attempt: row.attempts, finishedAt: now });
      log.warn({ taskId: row.taskId, step: step.key, code: error.code }, 'stale running step failed');
    }
    handled += 1;
    try {
      await advanceTask(deps, row.taskId, log);
    } catch (error) {
      log.warn({ err: error, taskId: row.taskId }, 'could not advance a task after its stale step');
    }
  }
  return handled;
}

/** Whether any sandbox result was stored since `since` (the newest finished sandbox attempt). */
async function sandboxResultSince(deps: Pick<ExecutorDeps, 'db'>, since: Date): Promise<boolean> {
  const at = await newestSandboxResultAt(deps.db);
  return at !== null && at.getTime() >= since.getTime();
}

/**
 * Ends tasks that have not ended and have nothing left that could move them on, with TASK.STUCK:
 * - a `running` run quiet (run and steps unchanged) for `quietMs`, that `advanceTask` cannot move and
 *   that has no step out and no decision still to come (`stuckReason`);
 * - a `planned` task with no run, quiet for `quietMs`, whose `plan.proposed` is neither in the planner's
 *   outbox nor waiting in the executor's consumer: the plan never reached the executor. A task the
 *   planner failed or cancelled the same way ends with the planner's error, or `cancelled`.
 * A task with a message still in an outbox is never judged, and the sweep runs only while the executor's
 * consumers have nothing undelivered (`backlog`), so a message that is merely late is never mistaken for
 * a lost one. Replica-safe: ending a task is a conditional update.
 */
export async function sweepStuckTasks(
  deps: ExecutorDeps,
  log: Log,
  options: { quietMs: number; backlog: () => Promise<number> },
): Promise<number> {
  const running = await quietRunningTasks(deps.db, options.quietMs, 50);
  const unplanned = await quietUnrunTasks(deps.db, options.quietMs, 50);
  // Only when there is something to judge: the backlog costs a request per consumer.
  if (running.length + unplanned.length === 0 || (await options.backlog()) > 0) return 0;
  let ended = 0;
  for (const taskId of running) {
    try {
      await advanceTask(deps, taskId, log);
    } catch (error) {
      log.warn({ err: error, taskId }, 'could not advance a quiet task; not judging it this time');
      continue;
    }
    const state = await loadState(deps.db, taskId);
    const run = await taskRunOf(deps.db, taskId);
    if (run?.status !== 'running') continue;
    const reason = stuckReason(state);
    if (reason === null) {
      // Still waiting for something (a human, most often): judged again after another quiet period, so
      // the oldest waiting tasks do not keep the sweep from the others.
      await touchRunningRun(deps.db, taskId);
      continue;
    }
    if (await failStuck(deps, taskId, `the task cannot move on: ${reason}`, state?.plan.id ?? null)) {
      ended += 1;
      log.warn({ taskId, reason }, 'stuck task failed');
    }
  }
  for (const { taskId, status, error } of unplanned) {
    // The planner's outcome (a plan, plan.failed, a cancel) was stored but never reached the executor.
    let plannerError: ErrorShape | null = null;
    try {
      if (status === 'failed')
        plannerError = parseStored(ErrorShape.nullable(), error, `Task.error of task ${taskId}`);
    } catch (failure) {
      log.error(
        { err: failure, taskId },
        'the planning error of a task that never reached the executor does not parse',
      );
      continue;
    }
    const outcome = unrunOutcome(status, plannerError);
    if (await endUnrun(deps, taskId, outcome)) {
      ended += 1;
      log.warn({ taskId, status, outcome: outcome.status }, 'task ended: its planning outcome never arrived');
    }
  }
  return ended;
}

async function endUnrun(deps: ExecutorDeps, taskId: string, outcome: TaskEnd): Promise<boolean> {
  const task = await taskOutcomeRef(deps.db, taskId);
  if (task === null) return false;
  const ended = await transaction(deps.db, (tx) =>
    endTaskInTx(
      tx,
      deps,
      { id: task.id, kind: task.kind, agentId: task.agentId },
      taskRequestRef(task),
      outcome,
      {
        planId: null,
      },
    ),
  );
  if (ended) deps.onTaskFinished?.(outcome.status, task.kind);
  return ended;
}

async function failStuck(
  deps: ExecutorDeps,
  taskId: string,
  message: string,
  planId: string | null,
): Promise<boolean> {
  const task = await taskOutcomeRef(deps.db, taskId);
  if (task === null) return false;
  const failed = await transaction(deps.db, (tx) =>
    failTaskInTx(
      tx,
      deps,
      { id: task.id, kind: task.kind, agentId: task.agentId },
      taskRequestRef(task),
      { code: ErrorCodes.TASK_STUCK, message, retryable: false },
      { planId },
    ),
  );
  if (failed) deps.onTaskFinished?.('failed', task.kind);
  return failed;
}

/**
 * Asks again for a re-plan that did not come back within the planning lease: a `replanning` run whose
 * row and whose task (the planner renews the task's row while it plans) are older than `leaseMs`. The
 * request is rebuilt from the run's state (the failed step and its error, the completed steps); the
 * planner makes at most one new version (a superseded plan is never re-planned).
 */
export async function sweepStaleReplanning(
  deps: ExecutorDeps,
  log: Log,
  options: { leaseMs: number },
): Promise<number> {
  const stale = await staleReplanningTasks(deps.db, options.leaseMs, 50);
  let asked = 0;
  for (const taskId of stale) {
    const state = await loadState(deps.db, taskId);
    if (state === null) continue;
    const action = nextAction(state.steps, state.dependsOn);
    const failed =
      action.kind === 'fail' ? state.steps.find((step) => step.key === action.error.stepId) : undefined;
    if (action.kind !== 'fail' || failed === undefined) continue;
    const error = action.error;
    const sent = await transaction(deps.db, async (tx) => {
      const claimed = await claimStaleReplanning(tx, {
        taskId,
        planId: state.plan.id,
        leaseMs: options.leaseMs,
      });
      if (!claimed) return false;
      await enqueueOutbox(tx, replanRequestMessage(deps, state, failed, error));
      return true;
    });
    if (sent) {
      asked += 1;
      log.warn({ taskId, step: failed.key }, 're-plan not answered within the planning lease; asked again');
    }
  }
  return asked;
}
