import { randomUUID } from 'node:crypto';
import type { Db, DbClient } from './client.js';
import { poolSql } from './sql.js';
import { toText } from './text.js';

/** A message that failed for good, as a consumer records it. */
export interface DeadLetterInput {
  /** Row id; default a random UUID. Pass a deterministic one to make a record without `streamSeq` idempotent. */
  id?: string;
  /** The durable consumer that gave up on the message. */
  consumer: string;
  /** The subject the message was published on. */
  subject: string;
  /** The JetStream stream sequence; (consumer, streamSeq) makes recording idempotent. */
  streamSeq?: bigint | number | null;
  /** The message id (`Nats-Msg-Id` or the envelope id), when it could be read. */
  messageId?: string | null;
  /** Why, as a `DOMAIN.REASON` error code (e.g. `BUS.SCHEMA_INVALID`). */
  code: string;
  /** A readable reason. */
  reason: string;
  /** The raw message body; bytes are decoded as UTF-8 (invalid sequences become U+FFFD). */
  payload: string | Uint8Array;
  /** The message's NATS headers. */
  headers?: Record<string, string> | null;
  /** How many times it was delivered (default 1). */
  deliveryCount?: number;
  /** The task the message belongs to; default {@link taskIdOfPayload} of the payload. */
  taskId?: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Larger payloads are not parsed for their task id (a poison message may be huge).
const MAX_PARSED_PAYLOAD = 8 * 1024 * 1024;

function uuidOf(value: unknown): string | null {
  return typeof value === 'string' && UUID.test(value) ? value.toLowerCase() : null;
}

/**
 * The task a message belongs to, read from its JSON payload without trusting it: `data.taskId` (every
 * internal event of a task and the outcome CloudEvents), then a CloudEvent's `subject`, then the envelope's
 * `correlationId` (the task id); null when none is a UUID or the payload is not JSON. Whoever published
 * the message chose these values: a reader must check that Tandem published it before acting on it.
 */
export function taskIdOfPayload(payload: string): string | null {
  if (payload.length > MAX_PARSED_PAYLOAD) return null;
  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const data = 'data' in body ? body.data : undefined;
  if (typeof data === 'object' && data !== null && 'taskId' in data) {
    const taskId = uuidOf(data.taskId);
    if (taskId !== null) return taskId;
  }
  return (
    uuidOf('subject' in body ? body.subject : undefined) ??
    uuidOf('correlationId' in body ? body.correlationId : undefined) ??
    uuidOf('correlationid' in body ? body.correlationid : undefined)
  );
}

/**
 * Records a dead letter; true when it was new, false when (consumer, streamSeq) or the id was already
 * recorded, so a repeated advisory or a redelivery does not make a second row.
 */
export async function recordDeadLetter(db: DbClient, input: DeadLetterInput): Promise<boolean> {
  const payload = typeof input.payload === 'string' ? input.payload : new TextDecoder().decode(input.payload);
  const headers =
    input.headers === undefined || input.headers === null
      ? null
      : JSON.stringify(
          Object.fromEntries(
            Object.entries(input.headers).map(([name, value]) => [toText(name), toText(value)]),
          ),
        );
  const streamSeq =
    input.streamSeq === undefined || input.streamSeq === null ? null : BigInt(input.streamSeq);
  const taskId = input.taskId === undefined ? taskIdOfPayload(payload) : uuidOf(input.taskId);
  // No conflict target: both the primary key and the (consumer, streamSeq) unique index count as "already recorded".
  const inserted = await db.$executeRaw`
    INSERT INTO "DeadLetter"
      ("id", "consumer", "subject", "streamSeq", "messageId", "code", "reason", "payload", "headers", "deliveryCount", "taskId", "createdAt")
    VALUES (
      ${input.id ?? randomUUID()}::uuid, ${input.consumer}, ${input.subject}, ${streamSeq}, ${input.messageId ?? null},
      ${input.code}, ${toText(input.reason)}, ${toText(payload)}, ${headers}::jsonb, ${input.deliveryCount ?? 1},
      ${taskId}::uuid, ${new Date()}
    )
    ON CONFLICT DO NOTHING`;
  return inserted === 1;
}

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
