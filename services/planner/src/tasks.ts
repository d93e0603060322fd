import { randomUUID } from 'node:crypto';
import {
  ErrorCodes,
  HTTP_TASK_SOURCE,
  TandemError,
  TaskAccepted,
  type TaskRequestRef,
  type TaskRequestedData,
} from '@tandem/contracts';
import {
  UTC_NOW as NOW,
  enqueueOutboxSql,
  isUniqueViolation,
  toJsonText,
  toText,
  sqlTransaction,
  type Db,
  type Sql,
} from '@tandem/db';
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
  /** Who submitted it: `token:<ApiToken.id>` over HTTP; absent (null) for a CloudEvent from NATS. */
  submittedBy?: string | null;
}

/** The outcome of accepting a submission. */
export type AcceptResult = { taskId: string; created: boolean };

async function acceptInTx(
  sql: Sql,
  submission: TaskSubmission,
  options: { prefix: string; causationId: string | null },
): Promise<AcceptResult> {
  const hash = requestHash(submission.data);
  const taskId = randomUUID();
  const kind = submission.data.kind ?? 'general';
  const agentId = submission.data.agentId ?? null;
  const input =
    submission.data.input === undefined || submission.data.input === null ? null : submission.data.input;
  // Insert first: a new key (the common case) costs one statement; a known key falls through to a read.
  const inserted = await sql.query(
    `INSERT INTO "Task" ("id", "source", "externalId", "requestHash", "agentId", "kind", "goal", "input", "status",
                         "budget", "preferences", "deadline", "submittedBy", "correlationId", "createdAt", "updatedAt")
     VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8::jsonb, 'accepted', $9::jsonb, $10::jsonb,
             $11::timestamptz AT TIME ZONE 'UTC', $12, $1::uuid, ${NOW}, ${NOW})
     ON CONFLICT ("source", "externalId") DO NOTHING`,
    [
      taskId,
      submission.source,
      submission.externalId,
      hash,
      agentId,
      kind,
      // A CloudEvent's text may hold NUL or lone surrogates, which Postgres refuses (HTTP bodies are made
      // safe by the body parser already).
      toText(submission.data.goal),
      input === null ? null : toJsonText(input),
      submission.data.budget === undefined ? null : toJsonText(submission.data.budget),
      submission.data.models === undefined ? null : toJsonText(submission.data.models),
      submission.data.deadline ?? null,
      submission.submittedBy ?? null,
    ],
  );
  if (inserted.rowCount === 0) {
    const existing = await sql.query(
      `SELECT "id"::text AS "id", "requestHash" FROM "Task" WHERE "source" = $1 AND "externalId" = $2`,
      [submission.source, submission.externalId],
    );
    const found = existing.rows[0];
    if (!found)
      throw new TandemError(ErrorCodes.TASK_CONFLICT, 'the task vanished while it was being accepted', {
        retryable: true,
      });
    const existingId = String(found['id']);
    if (found['requestHash'] !== hash) {
      throw new TandemError(
        ErrorCodes.TASK_CONFLICT,
        `a different task was already submitted with source "${submission.source}" and id "${submission.externalId}"`,
        { details: { taskId: existingId } },
      );
    }
    return { taskId: existingId, created: false };
  }
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
  await enqueueOutboxSql(sql, message);
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
  options: { prefix: string; causationId: string | null; beforeCommit?: (sql: Sql) => Promise<void> },
): Promise<AcceptResult> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await sqlTransaction(db, async (sql) => {
        const result = await acceptInTx(sql, submission, options);
        if (options.beforeCommit) await options.beforeCommit(sql);
        return result;
      });
    } catch (error) {
      // Two submissions of the same key raced; the loser reads the winner's row on the next attempt.
      if (attempt < 2 && isUniqueViolation(error)) continue;
      throw error;
    }
  }
}
