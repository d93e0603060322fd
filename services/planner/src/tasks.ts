import { randomUUID } from 'node:crypto';
import { HTTP_TASK_SOURCE, TaskAccepted } from '@tandem/contracts';
import {
  enqueueOutbox,
  findTaskByKey,
  insertTask,
  isUniqueViolation,
  transaction,
  type Db,
  type Tx,
} from '@tandem/db';
import { outboxEvent } from '@tandem/service-kit';
import { existingTask, taskToStore, type AcceptResult, type TaskSubmission } from './domain/intake.js';
import { requestHash } from './domain/request-hash.js';

export type { AcceptResult, TaskSubmission } from './domain/intake.js';

/** The `source` of HTTP submissions (defined in contracts, shared with the executor). */
export const HTTP_SOURCE = HTTP_TASK_SOURCE;

/**
 * Creates the task once per idempotency key, in the caller's transaction, with its `task.accepted`
 * event: the same key and data again returns the same task; the same key with other data throws
 * TASK.IDEMPOTENCY_CONFLICT. Insert first: a new key (the common case) costs one statement, a known key
 * falls through to a read.
 */
export async function acceptTaskIn(
  tx: Tx,
  submission: TaskSubmission,
  options: { prefix: string; causationId: string | null },
): Promise<AcceptResult> {
  const hash = requestHash(submission.data);
  const { row, accepted } = taskToStore(submission, randomUUID(), hash);
  if (!(await insertTask(tx, row)))
    return existingTask(submission, await findTaskByKey(tx, submission), hash);
  const { message } = outboxEvent({ prefix: options.prefix, publisher: 'planner' }, TaskAccepted, accepted, {
    correlationId: row.id,
    causationId: options.causationId,
  });
  await enqueueOutbox(tx, message);
  return { taskId: row.id, created: true };
}

/**
 * The task an already handled submission made: the same data is the same task (not created); other
 * data under its key is TASK.IDEMPOTENCY_CONFLICT, as on first acceptance.
 */
export async function acceptedBefore(db: Db, submission: TaskSubmission): Promise<AcceptResult> {
  return existingTask(submission, await findTaskByKey(db, submission), requestHash(submission.data));
}

/** {@link acceptTaskIn} in a transaction of its own (HTTP submissions). */
export async function acceptTask(
  db: Db,
  submission: TaskSubmission,
  options: { prefix: string; causationId: string | null },
): Promise<AcceptResult> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await transaction(db, (tx) => acceptTaskIn(tx, submission, options));
    } catch (error) {
      // Two submissions of the same key raced; the loser reads the winner's row on the next attempt.
      if (attempt < 2 && isUniqueViolation(error)) continue;
      throw error;
    }
  }
}
