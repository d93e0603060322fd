import { randomUUID } from 'node:crypto';
import {
  ErrorCodes,
  HTTP_TASK_SOURCE,
  TandemError,
  TaskAccepted,
  type TaskRequestRef,
  type TaskRequestedData,
} from '@tandem/contracts';
import { enqueueOutbox, isUniqueViolation, type Db, type Tx } from '@tandem/db';
import { outboxEvent } from '@tandem/service-kit';
import { requestHash } from './domain/request-hash.js';

/** The `source` of HTTP submissions (defined in contracts, shared with the executor). */
export const HTTP_SOURCE = HTTP_TASK_SOURCE;

/** Where a task request came from: `source` + `externalId` is its idempotency key. */
export interface TaskSubmission {
  source: string;
  externalId: string;
  request: TaskRequestRef;
  data: TaskRequestedData;
}

/** The outcome of accepting a submission. */
export type AcceptResult = { taskId: string; created: boolean };

async function acceptInTx(
  tx: Tx,
  submission: TaskSubmission,
  options: { prefix: string; causationId: string | null },
): Promise<AcceptResult> {
  const hash = requestHash(submission.data);
  const existing = await tx.task.findUnique({
    where: { source_externalId: { source: submission.source, externalId: submission.externalId } },
    select: { id: true, requestHash: true },
  });
  if (existing) {
    if (existing.requestHash !== hash) {
      throw new TandemError(
        ErrorCodes.TASK_CONFLICT,
        `a different task was already submitted with source "${submission.source}" and id "${submission.externalId}"`,
        {
          details: { taskId: existing.id },
        },
      );
    }
    return { taskId: existing.id, created: false };
  }
  const taskId = randomUUID();
  const kind = submission.data.kind ?? 'general';
  const agentId = submission.data.agentId ?? null;
  await tx.task.create({
    data: {
      id: taskId,
      source: submission.source,
      externalId: submission.externalId,
      requestHash: hash,
      agentId,
      kind,
      goal: submission.data.goal,
      ...(submission.data.input === undefined || submission.data.input === null
        ? {}
        : { input: submission.data.input }),
      ...(submission.data.budget === undefined ? {} : { budget: submission.data.budget }),
      ...(submission.data.models === undefined ? {} : { preferences: submission.data.models }),
      ...(submission.data.deadline === undefined ? {} : { deadline: new Date(submission.data.deadline) }),
      status: 'accepted',
      correlationId: taskId,
    },
  });
  const { message } = outboxEvent(
    { prefix: options.prefix, publisher: 'planner' },
    TaskAccepted,
    {
      taskId,
      request: submission.request,
      goal: submission.data.goal,
      input: submission.data.input,
      kind,
      agentId,
    },
    { correlationId: taskId, causationId: options.causationId },
  );
  await enqueueOutbox(tx, message);
  return { taskId, created: true };
}

/**
 * Creates the task once per idempotency key: the same key and data again returns the same task; the same
 * key with other data throws TASK.IDEMPOTENCY_CONFLICT. `beforeCommit` runs inside the same transaction
 * (the bus handler records the message as processed there).
 */
export async function acceptTask(
  db: Db,
  submission: TaskSubmission,
  options: { prefix: string; causationId: string | null; beforeCommit?: (tx: Tx) => Promise<void> },
): Promise<AcceptResult> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await db.prisma.$transaction(async (tx) => {
        const result = await acceptInTx(tx, submission, options);
        if (options.beforeCommit) await options.beforeCommit(tx);
        return result;
      });
    } catch (error) {
      // Two submissions of the same key raced; the loser reads the winner's row on the next attempt.
      if (attempt < 2 && isUniqueViolation(error)) continue;
      throw error;
    }
  }
}
