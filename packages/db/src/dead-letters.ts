// The executor's side of dead letters (its sweep's read and DeadLetterOutcome); DeadLetter itself is
// written by tables/dead-letter.ts.
import type { Db, DbClient } from './client.js';
import { poolSql } from './sql.js';

/** A dead letter of a task's message not yet dealt with, with the outbox row its message id names. */
export interface TaskDeadLetter {
  id: string;
  taskId: string;
  consumer: string;
  subject: string;
  messageId: string | null;
  /** The `Nats-Msg-Id` header the message carried, when it had one. */
  natsMessageId: string | null;
  code: string;
  reason: string;
  /** The dead-lettered message's body as recorded. */
  payload: string;
  deliveryCount: number;
  createdAt: Date;
  /**
   * The outbox row whose id is the message's `Nats-Msg-Id` (or its message id): what Tandem published
   * under that id. Null when no row has that id.
   */
  outbox: { publisher: string; subject: string; payload: string } | null;
}

/**
 * Dead letters that carry a task id, recorded within `horizonMs` and without a `DeadLetterOutcome` row
 * yet, oldest first, each with the outbox row its message id names (plain SQL, one statement).
 */
export async function pendingTaskDeadLetters(
  db: Pick<Db, 'pool'>,
  options: { limit: number; horizonMs: number },
): Promise<TaskDeadLetter[]> {
  const result = await poolSql(db).query(
    `SELECT d."id"::text AS "id", d."taskId"::text AS "taskId", d."consumer", d."subject", d."messageId",
            d."headers"->>'Nats-Msg-Id' AS "natsMessageId", d."code", d."reason", d."payload", d."deliveryCount",
            (d."createdAt" AT TIME ZONE 'UTC') AS "createdAt",
            o."publisher" AS "outboxPublisher", o."subject" AS "outboxSubject", o."payload"::text AS "outboxPayload"
       FROM "DeadLetter" d
       LEFT JOIN "DeadLetterOutcome" h ON h."deadLetterId" = d."id"
       LEFT JOIN "Outbox" o ON o."id" = (
         SELECT CASE WHEN m ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN m::uuid END
           FROM coalesce(d."headers"->>'Nats-Msg-Id', d."messageId") AS m)
      WHERE d."taskId" IS NOT NULL AND h."deadLetterId" IS NULL
        AND d."createdAt" >= (now() AT TIME ZONE 'UTC') - $2::int * interval '1 millisecond'
      ORDER BY d."createdAt" LIMIT $1`,
    [options.limit, options.horizonMs],
  );
  return result.rows.map((row) => {
    const text = (column: string): string => {
      const value = row[column];
      if (typeof value !== 'string') throw new TypeError(`DeadLetter.${column} is not text`);
      return value;
    };
    const optional = (column: string): string | null => {
      const value = row[column];
      return typeof value === 'string' ? value : null;
    };
    const createdAt = row['createdAt'];
    const deliveryCount = row['deliveryCount'];
    if (!(createdAt instanceof Date) || typeof deliveryCount !== 'number')
      throw new TypeError('malformed DeadLetter row');
    const outboxPayload = optional('outboxPayload');
    return {
      id: text('id'),
      taskId: text('taskId'),
      consumer: text('consumer'),
      subject: text('subject'),
      messageId: optional('messageId'),
      natsMessageId: optional('natsMessageId'),
      code: text('code'),
      reason: text('reason'),
      payload: text('payload'),
      deliveryCount,
      createdAt,
      outbox:
        outboxPayload === null
          ? null
          : { publisher: text('outboxPublisher'), subject: text('outboxSubject'), payload: outboxPayload },
    };
  });
}

/**
 * Records what became of a task's dead letter (writer: executor), in the caller's transaction; false when
 * it was already recorded (another replica dealt with it first).
 */
export async function recordDeadLetterOutcome(
  db: DbClient,
  input: { deadLetterId: string; taskId: string | null; outcome: string },
): Promise<boolean> {
  const inserted = await db.$executeRaw`
    INSERT INTO "DeadLetterOutcome" ("deadLetterId", "taskId", "outcome", "createdAt")
    VALUES (${input.deadLetterId}::uuid, ${input.taskId}::uuid, ${input.outcome}, ${new Date()})
    ON CONFLICT DO NOTHING`;
  return inserted === 1;
}
