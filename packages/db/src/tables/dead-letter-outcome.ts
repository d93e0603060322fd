import { sql } from 'kysely';
import { utcNowMinus, queryable, type DbOrTx } from '../queryable.js';
import type { DB } from '../generated/kysely.js';
import type { Tx } from '../transaction.js';

/**
 * The only writer of DeadLetterOutcome (executor): what became of a dead letter of a task's message, so
 * that each one is dealt with once by one replica. Also the executor's read of the dead letters it has
 * not dealt with yet.
 */

/** What became of a task's dead letter. */
export type DeadLetterOutcomeKind = DB['DeadLetterOutcome']['outcome'];

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

const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

/**
 * Dead letters that carry a task id, recorded within `horizonMs` and without a `DeadLetterOutcome` row
 * yet, oldest first, each with the outbox row its message id names (one statement).
 */
export async function pendingTaskDeadLetters(
  source: DbOrTx,
  options: { limit: number; horizonMs: number },
): Promise<TaskDeadLetter[]> {
  const natsMessageId = sql<string | null>`${sql.ref('d.headers')}->>'Nats-Msg-Id'`;
  const rows = await queryable(source)
    .selectFrom('DeadLetter as d')
    .leftJoin('DeadLetterOutcome as h', 'h.deadLetterId', 'd.id')
    .leftJoin('Outbox as o', (join) =>
      join.on(
        'o.id',
        '=',
        sql<string>`(SELECT CASE WHEN m ~* ${UUID_PATTERN} THEN m::uuid END
                       FROM coalesce(${natsMessageId}, ${sql.ref('d.messageId')}) AS m)`,
      ),
    )
    .select([
      'd.id',
      'd.taskId',
      'd.consumer',
      'd.subject',
      'd.messageId',
      natsMessageId.as('natsMessageId'),
      'd.code',
      'd.reason',
      'd.payload',
      'd.deliveryCount',
      'd.createdAt',
      'o.publisher as outboxPublisher',
      'o.subject as outboxSubject',
      sql<string | null>`${sql.ref('o.payload')}::text`.as('outboxPayload'),
    ])
    .where('d.taskId', 'is not', null)
    .where('h.deadLetterId', 'is', null)
    .where('d.createdAt', '>=', utcNowMinus(options.horizonMs))
    .orderBy('d.createdAt')
    .limit(options.limit)
    .execute();
  return rows.flatMap((row) => {
    if (row.taskId === null) return [];
    return [
      {
        id: row.id,
        taskId: row.taskId,
        consumer: row.consumer,
        subject: row.subject,
        messageId: row.messageId,
        natsMessageId: row.natsMessageId,
        code: row.code,
        reason: row.reason,
        payload: row.payload,
        deliveryCount: row.deliveryCount,
        createdAt: row.createdAt,
        outbox:
          row.outboxPayload === null || row.outboxPublisher === null || row.outboxSubject === null
            ? null
            : { publisher: row.outboxPublisher, subject: row.outboxSubject, payload: row.outboxPayload },
      },
    ];
  });
}

/**
 * Records what became of a task's dead letter, in the caller's transaction; false when it was already
 * recorded (another replica dealt with it first).
 */
export async function recordDeadLetterOutcome(
  tx: Tx,
  input: { deadLetterId: string; taskId: string | null; outcome: DeadLetterOutcomeKind },
): Promise<boolean> {
  const result = await tx
    .insertInto('DeadLetterOutcome')
    .values({ ...input, createdAt: new Date() })
    .onConflict((conflict) => conflict.doNothing())
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}
