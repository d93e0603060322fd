import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { json } from '../column-types.js';
import { queryable, type DbOrTx } from '../queryable.js';
import { toText } from '../text.js';
import type { Tx } from '../transaction.js';

/*
 * The DeadLetter table: the one module that writes it. Consumers record a message that failed for good
 * (`recordDeadLetter`); the outbox relay records a row it can never publish (`recordOutboxDeadLetter`, in
 * the transaction that marks the row).
 */

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
 * recorded, so a repeated advisory or a redelivery does not make a second row. Runs on the database or in
 * the caller's transaction.
 */
export async function recordDeadLetter(db: DbOrTx, input: DeadLetterInput): Promise<boolean> {
  const payload = typeof input.payload === 'string' ? input.payload : new TextDecoder().decode(input.payload);
  const streamSeq =
    input.streamSeq === undefined || input.streamSeq === null ? null : BigInt(input.streamSeq).toString();
  const taskId = input.taskId === undefined ? taskIdOfPayload(payload) : uuidOf(input.taskId);
  // No conflict target: both the primary key and the (consumer, streamSeq) unique index count as "already recorded".
  const result = await queryable(db)
    .insertInto('DeadLetter')
    .values({
      id: input.id ?? randomUUID(),
      consumer: input.consumer,
      subject: input.subject,
      streamSeq,
      messageId: input.messageId ?? null,
      code: input.code,
      reason: toText(input.reason),
      payload: toText(payload),
      // json() makes every header name and value safe for jsonb (NUL, lone surrogates).
      headers: input.headers === undefined || input.headers === null ? null : json(input.headers),
      deliveryCount: input.deliveryCount ?? 1,
      taskId,
      createdAt: new Date(),
    })
    .onConflict((conflict) => conflict.doNothing())
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}

/** The dead letter of an outbox row, copied from the row itself. */
export interface OutboxRowDeadLetter {
  /** The outbox row (its id is also the DeadLetter's id and messageId). */
  outboxId: string;
  /** Who gave up (the relay: `outbox:<publisher>`). */
  consumer: string;
  code: string;
  /** Already made safe for text by the caller. */
  reason: string;
}

/**
 * In the caller's transaction: a DeadLetter row copied from an outbox row (subject, payload as text,
 * headers, attempts as the delivery count), without a stream sequence; nothing when one exists already.
 */
export async function recordOutboxDeadLetter(tx: Tx, deadLetter: OutboxRowDeadLetter): Promise<void> {
  await tx
    .insertInto('DeadLetter')
    .columns([
      'id',
      'consumer',
      'subject',
      'messageId',
      'code',
      'reason',
      'payload',
      'headers',
      'deliveryCount',
      'createdAt',
    ])
    .expression((eb) =>
      eb
        .selectFrom('Outbox')
        .select([
          'id',
          eb.val(deadLetter.consumer).as('consumer'),
          'subject',
          sql<string>`"id"::text`.as('messageId'),
          eb.val(deadLetter.code).as('code'),
          eb.val(deadLetter.reason).as('reason'),
          sql<string>`"payload"::text`.as('payload'),
          'headers',
          'attempts',
          sql<Date>`(clock_timestamp() AT TIME ZONE 'UTC')`.as('createdAt'),
        ])
        .where('id', '=', deadLetter.outboxId),
    )
    .onConflict((conflict) => conflict.doNothing())
    .execute();
}
