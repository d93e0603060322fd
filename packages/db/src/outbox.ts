import type { DbClient, Tx } from './client.js';
import { Prisma } from './generated/prisma/client.js';
import { toText } from './text.js';

/** A message to publish once the caller's transaction commits. */
export interface OutboxMessage {
  /** The message id; the relay publishes it as `Nats-Msg-Id`, so JetStream drops a second publish. */
  id: string;
  /** The service that owns the row; its relay publishes only its own rows. */
  publisher: string;
  /** The full NATS subject, prefix included. */
  subject: string;
  /** The message body (the event envelope), stored as JSONB. */
  payload: Prisma.InputJsonValue;
  /** NATS headers to publish with the message. */
  headers?: Record<string, string>;
}

/** An outbox row waiting to be published, as the relay reads it. */
export interface PendingOutboxMessage {
  /** Insertion order; the relay publishes in this order. */
  seq: bigint;
  /** The message id (`Nats-Msg-Id`). */
  id: string;
  /** The NATS subject. */
  subject: string;
  /** The stored message body. */
  payload: Prisma.JsonValue;
  /** NATS headers (empty when none were stored). */
  headers: Record<string, string>;
  /** Failed publish attempts so far. */
  attempts: number;
  /** When the row was written. */
  createdAt: Date;
}

// Postgres accepts at most 65535 bind parameters per statement; 6 per row keeps well below it.
const ROWS_PER_INSERT = 1000;
const MAX_ERROR_LENGTH = 2000;

/**
 * Writes outbox rows in the caller's transaction (one multi-row INSERT per 1000 messages), so that the
 * messages exist if and only if the transaction's other changes commit.
 */
export async function enqueueOutbox(
  tx: Tx,
  messages: OutboxMessage | readonly OutboxMessage[],
): Promise<void> {
  const list = isMessageList(messages) ? messages : [messages];
  // One timestamp for the batch, bound as a value: Prisma writes DateTime columns as UTC wall-clock
  // time, and the database default (CURRENT_TIMESTAMP) would follow the session's time zone instead.
  const createdAt = new Date();
  for (let start = 0; start < list.length; start += ROWS_PER_INSERT) {
    const rows = list.slice(start, start + ROWS_PER_INSERT).map((message) => {
      const payload = JSON.stringify(message.payload);
      const headers = message.headers === undefined ? null : JSON.stringify(message.headers);
      return Prisma.sql`(${message.id}::uuid, ${message.publisher}, ${message.subject}, ${payload}::jsonb, ${headers}::jsonb, ${createdAt})`;
    });
    await tx.$executeRaw`
      INSERT INTO "Outbox" ("id", "publisher", "subject", "payload", "headers", "createdAt")
      VALUES ${Prisma.join(rows)}`;
  }
}

/**
 * Reads up to `limit` unpublished rows of one publisher, oldest first. It holds no transaction: the
 * relay publishes them and then calls {@link markPublished}. Two relays may read the same rows; the
 * duplicate publish is dropped by JetStream through `Nats-Msg-Id`.
 */
export async function fetchUnpublished(
  db: DbClient,
  publisher: string,
  limit: number,
): Promise<PendingOutboxMessage[]> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const rows = await db.outbox.findMany({
    where: { publisher, publishedAt: null },
    orderBy: { seq: 'asc' },
    take: limit,
    select: {
      seq: true,
      id: true,
      subject: true,
      payload: true,
      headers: true,
      attempts: true,
      createdAt: true,
    },
  });
  return rows.map((row) => ({ ...row, headers: toHeaders(row.headers) }));
}

/** Marks rows as published; returns how many were still unpublished. */
export async function markPublished(db: DbClient, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await db.outbox.updateMany({
    where: { id: { in: [...ids] }, publishedAt: null },
    data: { publishedAt: new Date() },
  });
  return result.count;
}

/** Counts a failed publish of one row and keeps the error's message (the row stays unpublished). */
export async function recordPublishFailure(db: DbClient, id: string, error: unknown): Promise<void> {
  await db.outbox.updateMany({
    where: { id },
    data: { attempts: { increment: 1 }, lastError: toText(errorMessage(error)).slice(0, MAX_ERROR_LENGTH) },
  });
}

function isMessageList(value: OutboxMessage | readonly OutboxMessage[]): value is readonly OutboxMessage[] {
  return Array.isArray(value);
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
}

function toHeaders(value: Prisma.JsonValue): Record<string, string> {
  const headers: Record<string, string> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return headers;
  for (const [name, headerValue] of Object.entries(value)) {
    if (typeof headerValue === 'string') headers[name] = headerValue;
  }
  return headers;
}
