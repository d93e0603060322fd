import { PublicSubjects, StepFinished, consumerNameFor, subjectFor, taskRequestRef } from '@tandem/contracts';
import {
  enqueueOutbox,
  pendingTaskDeadLetters,
  recordDeadLetterOutcome,
  taskOutcomeRef,
  taskRunOf,
  transaction,
} from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import type { ExecutorDeps } from './deps.js';
import { judgeDeadLetter } from './domain/dead-letters.js';
import { cancelRequestMessage, failTaskInTx } from './outcomes.js';

/** Dead letters older than this are not looked at (the executor was down for longer than a week). */
const HORIZON_MS = 7 * 24 * 60 * 60_000;

/**
 * Turns dead letters of task messages into task failures: for each dead letter with a task id that no
 * replica dealt with yet, a message Tandem published (see `judgeDeadLetter`) fails its task with
 * TASK.MESSAGE_DEAD_LETTERED and asks for its cancellation (so a sandbox job is killed and planning
 * stops); a forged one is only recorded. Replica-safe: the `DeadLetterOutcome` row and the conditional
 * task failure commit together, and a row another replica wrote first rolls this one back.
 */
export async function sweepDeadLetters(
  deps: Pick<ExecutorDeps, 'db' | 'prefix' | 'onTaskFinished'>,
  log: Log,
  limit = 100,
): Promise<number> {
  const letters = await pendingTaskDeadLetters(deps.db, { limit, horizonMs: HORIZON_MS });
  const learning = consumerNameFor(deps.prefix, 'learning-');
  const reports = new Set(
    [
      StepFinished.subjectSuffix,
      PublicSubjects.taskCompleted,
      PublicSubjects.taskFailed,
      PublicSubjects.taskCancelled,
    ].map((suffix) => subjectFor(deps.prefix, suffix)),
  );
  const isObserver = (consumer: string, subject: string): boolean =>
    consumer.startsWith(learning) || reports.has(subject);
  for (const letter of letters) {
    const verdict = judgeDeadLetter(letter, { isObserver });
    const ended = await transaction(deps.db, async (tx) => {
      if (verdict.kind === 'ignore') {
        await recordDeadLetterOutcome(tx, {
          deadLetterId: letter.id,
          taskId: letter.taskId,
          outcome: verdict.outcome,
        });
        return null;
      }
      const task = await taskOutcomeRef(tx, letter.taskId);
      const run = task ? await taskRunOf(tx, task.id) : null;
      const done =
        task !== null &&
        (await failTaskInTx(
          tx,
          deps,
          { id: task.id, kind: task.kind, agentId: task.agentId },
          taskRequestRef(task),
          verdict.error,
          { planId: run?.planId ?? null },
        ));
      const outcome = task === null ? 'no_task' : done ? 'task_failed' : 'task_ended';
      if (!(await recordDeadLetterOutcome(tx, { deadLetterId: letter.id, taskId: letter.taskId, outcome })))
        throw new AlreadyHandled();
      if (!done || task === null) return null;
      await enqueueOutbox(
        tx,
        cancelRequestMessage(deps, {
          taskId: task.id,
          source: '/tandem/executor/dead-letters',
          time: new Date(),
          reason: 'a message of the task was dead-lettered',
          requestedBy: 'tandem:dead-letter',
        }),
      );
      return task;
    }).catch((error: unknown) => {
      if (error instanceof AlreadyHandled) return null;
      throw error;
    });
    if (verdict.kind === 'ignore') {
      log.warn(
        {
          deadLetterId: letter.id,
          taskId: letter.taskId,
          consumer: letter.consumer,
          outcome: verdict.outcome,
        },
        'dead letter does not end its task',
      );
    } else if (ended) {
      deps.onTaskFinished?.('failed', ended.kind);
      log.warn(
        { taskId: ended.id, consumer: letter.consumer, subject: letter.subject, code: letter.code },
        'task failed: a message of it was dead-lettered',
      );
    }
  }
  return letters.length;
}

/** Another replica recorded the outcome first: this transaction's writes are rolled back. */
class AlreadyHandled extends Error {}
