import { randomUUID } from 'node:crypto';
import type { DbClient } from './client.js';
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
  // No conflict target: both the primary key and the (consumer, streamSeq) unique index count as "already recorded".
  const inserted = await db.$executeRaw`
    INSERT INTO "DeadLetter"
      ("id", "consumer", "subject", "streamSeq", "messageId", "code", "reason", "payload", "headers", "deliveryCount", "createdAt")
    VALUES (
      ${input.id ?? randomUUID()}::uuid, ${input.consumer}, ${input.subject}, ${streamSeq}, ${input.messageId ?? null},
      ${input.code}, ${toText(input.reason)}, ${toText(payload)}, ${headers}::jsonb, ${input.deliveryCount ?? 1}, ${new Date()}
    )
    ON CONFLICT DO NOTHING`;
  return inserted === 1;
}
