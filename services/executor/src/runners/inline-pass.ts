import type { TaskRequestRef } from '@tandem/contracts';
import {
  finishApprovedSteps,
  enqueueOutbox,
  lockPlanForStepStart,
  transaction,
  type ApprovedStepEnd,
  type OutboxMessage,
} from '@tandem/db';
import { inlineFailure, inlinePass, resolvedArguments, unverified } from '../domain/advance.js';
import { approvalHolds } from '../domain/decision.js';
import type { RunState, TaskRef } from '../domain/run-state.js';
import type { ExecutorDeps } from '../deps.js';
import { completeTaskInTx, stepFinishedMessage, type OutcomeExtra, type StepOutcome } from '../outcomes.js';
import { askHumanRunner } from './ask-human.js';
import { deleteFileRunner } from './delete-file.js';
import { listFilesRunner } from './list-files.js';
import { readFileRunner } from './read-file.js';
import { respondRunner } from './respond.js';
import type { InlineRunner } from './types.js';
import { writeFileRunner } from './write-file.js';

/** The runner of each inline tool. */
const INLINE_RUNNERS: ReadonlyMap<string, InlineRunner> = new Map(
  [respondRunner, askHumanRunner, readFileRunner, writeFileRunner, deleteFileRunner, listFilesRunner].map(
    (runner) => [runner.tool, runner],
  ),
);

/** Another replica finished a step of the pass first: the pass's writes are rolled back. */
class ClaimLost extends Error {}

/**
 * Runs every approved inline step that can run now (`inlinePass`), in plan order, in ONE transaction
 * holding the plan lock, and completes the task in it when nothing is left: a plan of workspace tools and
 * a `respond` costs one write transaction, not one per step. A tool failure (missing file, full
 * workspace, refused path) fails its step and ends the pass; the steps before it stay completed.
 */
export async function runInlinePass(
  deps: ExecutorDeps,
  state: RunState,
  task: TaskRef,
  request: TaskRequestRef,
  extra: OutcomeExtra,
): Promise<{ count: number; completed: boolean }> {
  try {
    return await transaction(deps.db, async (tx) => {
      if (!(await lockPlanForStepStart(tx, state.plan.id))) return { count: 0, completed: false };
      const messages: OutboxMessage[] = [];
      const finished: ApprovedStepEnd[] = [];
      let failed = false;
      for (const step of inlinePass(state.steps, state.dependsOn)) {
        let outcome: StepOutcome;
        try {
          // Bound again here: a step whose values come from a step of this same pass is known only now.
          if (!approvalHolds(step, resolvedArguments(state.steps, step))) throw unverified(step);
          const runner = INLINE_RUNNERS.get(step.tool);
          if (runner === undefined) throw new TypeError(`${step.tool} has no inline runner`);
          outcome = { status: 'completed', value: await runner.run({ tx, deps, state }, step) };
        } catch (error) {
          const shape = inlineFailure(error, step);
          if (shape === null) throw error;
          outcome = { status: 'failed', error: shape };
        }
        finished.push({
          stepId: step.stepId,
          end: outcome.status === 'completed' ? outcome : { status: 'failed', error: outcome.error },
        });
        messages.push(stepFinishedMessage(deps, step, state.task.id, outcome));
        if (outcome.status === 'failed') {
          step.status = 'failed';
          step.error = outcome.error;
          failed = true;
          break;
        }
        step.status = 'completed';
        step.result = { value: outcome.value, stdout: '' };
      }
      if (finished.length === 0) return { count: 0, completed: false };
      // One statement for the whole pass; a step another replica finished first undoes this pass.
      if ((await finishApprovedSteps(tx, finished)) !== finished.length) throw new ClaimLost();
      if (failed || !state.steps.every((step) => step.status === 'completed')) {
        await enqueueOutbox(tx, messages);
        return { count: finished.length, completed: false };
      }
      const completed = await completeTaskInTx(tx, deps, state, task, request, extra, messages);
      return { count: finished.length, completed };
    });
  } catch (error) {
    if (error instanceof ClaimLost) return { count: 0, completed: false };
    throw error;
  }
}
