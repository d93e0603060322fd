import { TandemError, taskRequestRef, type ErrorShape, type TaskRequestRef } from '@tandem/contracts';
import { enqueueOutbox, startReplanning, transaction } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import type { ExecutorDeps } from './deps.js';
import { decideAdvance } from './domain/advance.js';
import type { StepState } from './domain/progress.js';
import type { RunState, TaskRef } from './domain/run-state.js';
import {
  completeTaskInTx,
  failTaskInTx,
  finishStepInTx,
  replanRequestMessage,
  type OutcomeExtra,
} from './outcomes.js';
import { httpRequestRunner } from './runners/http-request.js';
import { runInlinePass } from './runners/inline-pass.js';
import { runCodeRunner } from './runners/run-code.js';
import type { Delivery, StepRunner } from './runners/step-runner.js';
import { loadState } from './state.js';

/** The runner of each tool whose step leaves the database. */
const STEP_RUNNERS: Readonly<Record<StepRunner['tool'], StepRunner>> = {
  http_request: httpRequestRunner,
  run_code: runCodeRunner,
};

/**
 * Moves a task forward as far as it can go now: loads its run state, lets `decideAdvance` (domain/)
 * choose the next move and carries it out — the inline steps in one pass, a step that leaves the
 * database through its tool's runner, a re-plan, the task's end — then loads again. Every change is a
 * conditional update in a short transaction, so two replicas advancing the same task never do a step
 * twice; model and HTTP calls happen outside transactions.
 */
export async function advanceTask(
  deps: ExecutorDeps,
  taskId: string,
  log: Log,
  delivery: Delivery = { lastDelivery: false },
): Promise<void> {
  for (let guard = 0; guard < 1000; guard += 1) {
    const state = await loadState(deps.db, taskId);
    const decision = decideAdvance(state, { now: new Date(), maxReplans: deps.maxReplans });
    if (decision.kind === 'stop' || state === null) return;
    const task: TaskRef = { id: state.task.id, kind: state.task.kind, agentId: state.task.agentId };
    const request = taskRequestRef(state.task);
    const extra = {
      planId: state.plan.id,
      planVersion: state.plan.version,
      tools: state.steps.map((step) => step.tool),
    };
    switch (decision.kind) {
      case 'fail_task':
        await endTask(deps, task, request, decision.error, extra, log);
        return;
      case 'replan':
        await requestReplan(deps, state, decision.failed, decision.error, log);
        return;
      case 'complete':
        await completeTask(deps, state, task, request, extra, log);
        return;
      case 'wait':
        log.debug({ taskId, reason: decision.reason }, 'task waits');
        return;
      case 'fail_steps':
        for (const failure of decision.failures) {
          if (failure.why === 'unbound')
            log.warn(
              { taskId, step: failure.step.key },
              'approved step has no stored decision for what would run',
            );
          await failStep(deps, failure.step, taskId, failure.from, failure.error);
        }
        continue;
      case 'run_inline': {
        const ran = await runInlinePass(deps, state, task, request, extra);
        if (ran.count === 0) return;
        if (ran.completed) {
          deps.onTaskFinished?.('completed', task.kind);
          log.info({ taskId }, 'task completed');
          return;
        }
        continue;
      }
      case 'start': {
        const step = decision.step;
        try {
          const progressed = await STEP_RUNNERS[decision.tool].start(deps, state, step, log, delivery);
          if (!progressed) return;
        } catch (error) {
          if (!(error instanceof TandemError) || error.retryable) throw error;
          // An expected tool failure (missing file, refused URL, workspace full): the step fails, not the process.
          await failStep(deps, step, taskId, ['approved', 'running'], error.toShape());
        }
        continue;
      }
    }
  }
}

async function failStep(
  deps: ExecutorDeps,
  step: StepState,
  taskId: string,
  from: ReadonlyArray<'approved' | 'running'>,
  error: ErrorShape,
): Promise<void> {
  await transaction(deps.db, (tx) =>
    finishStepInTx(tx, deps, step, taskId, from, { status: 'failed', error }),
  );
}

async function endTask(
  deps: ExecutorDeps,
  task: TaskRef,
  request: TaskRequestRef,
  error: ErrorShape & { stepId?: string },
  extra: OutcomeExtra,
  log: Log,
): Promise<void> {
  const failed = await transaction(deps.db, (tx) => failTaskInTx(tx, deps, task, request, error, extra));
  if (failed) {
    deps.onTaskFinished?.('failed', task.kind);
    log.warn({ taskId: task.id, code: error.code }, 'task failed');
  }
}

async function completeTask(
  deps: ExecutorDeps,
  state: RunState,
  task: TaskRef,
  request: TaskRequestRef,
  extra: OutcomeExtra,
  log: Log,
): Promise<void> {
  const completed = await transaction(deps.db, (tx) =>
    completeTaskInTx(tx, deps, state, task, request, extra),
  );
  if (completed) {
    deps.onTaskFinished?.('completed', task.kind);
    log.info({ taskId: task.id }, 'task completed');
  }
}

async function requestReplan(
  deps: ExecutorDeps,
  state: RunState,
  failed: StepState,
  error: ErrorShape,
  log: Log,
): Promise<void> {
  const asked = await transaction(deps.db, async (tx) => {
    const started = await startReplanning(tx, {
      taskId: state.task.id,
      planId: state.plan.id,
      replans: state.run.replans,
    });
    if (!started) return false;
    await enqueueOutbox(tx, replanRequestMessage(deps, state, failed, error));
    return true;
  });
  if (asked) {
    log.info(
      { taskId: state.task.id, step: failed.key, code: error.code },
      'step failed; asked for a new plan',
    );
  }
}
