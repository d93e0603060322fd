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
