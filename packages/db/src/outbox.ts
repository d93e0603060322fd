import type { Db, Tx } from './client.js';
import type pg from 'pg';
import {
  afterCommit,
  insertRows,
  poolOf,
  poolSql,
  sqlTransaction,
  utcWallClock,
  type Sql,
  type SqlColumn,
} from './sql.js';
import { Prisma } from './generated/prisma/client.js';
import { toJsonText, toText } from './text.js';

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
  prismaWrites += 1;
  // One timestamp for the batch, bound as a value: Prisma writes DateTime columns as UTC wall-clock
  // time, and the database default (CURRENT_TIMESTAMP) would follow the session's time zone instead.
  const createdAt = new Date();
  for (let start = 0; start < list.length; start += ROWS_PER_INSERT) {
    const rows = list.slice(start, start + ROWS_PER_INSERT).map((message) => {
      // Made safe here, once for every publisher: a NUL in a payload would fail the whole transaction.
      const payload = toJsonText(message.payload);
      const headers = message.headers === undefined ? null : toJsonText(message.headers);
      return Prisma.sql`(${message.id}::uuid, ${message.publisher}, ${message.subject}, ${payload}::jsonb, ${headers}::jsonb, ${createdAt})`;
    });
    await tx.$executeRaw`
      INSERT INTO "Outbox" ("id", "publisher", "subject", "payload", "headers", "createdAt")
      VALUES ${Prisma.join(rows)}`;
  }
}

const OUTBOX_COLUMNS: SqlColumn[] = [
  { name: 'id', cast: 'uuid' },
  { name: 'publisher' },
  { name: 'subject' },
  { name: 'payload', cast: 'jsonb' },
  { name: 'headers', cast: 'jsonb' },
  { name: 'createdAt', cast: 'timestamp' },
];

/** Listeners for committed outbox rows, by pool (the relay of the service that owns the pool). */
const committedListeners = new WeakMap<pg.Pool, (messages: readonly OutboxMessage[]) => void>();
/** Outbox writes made through Prisma transactions, which have no commit hook: the relay must read those. */
let prismaWrites = 0;

/**
 * Hands the rows of every plain-SQL transaction on this pool to `listener` right after it commits, so the
 * relay can publish them without reading them back. Rows written through Prisma (and rows whose hand-off
 * was lost) are still found by the relay's reads.
 */
export function onOutboxCommitted(
  db: Pick<Db, 'pool'>,
  listener: (messages: readonly OutboxMessage[]) => void,
): void {
  committedListeners.set(db.pool, listener);
}

/** How many outbox writes went through Prisma transactions in this process (for the relay). */
export function prismaOutboxWrites(): number {
  return prismaWrites;
}

/** {@link enqueueOutbox} on a plain-SQL transaction (see `sqlTransaction`). */
export async function enqueueOutboxSql(
  sql: Sql,
  messages: OutboxMessage | readonly OutboxMessage[],
): Promise<void> {
  const list = isMessageList(messages) ? messages : [messages];
  const pool = poolOf(sql);
  const listener = pool === undefined ? undefined : committedListeners.get(pool);
  if (listener !== undefined && list.length > 0) afterCommit(sql, () => listener(list));
  const createdAt = utcWallClock();
  await insertRows(
    sql,
    'Outbox',
    OUTBOX_COLUMNS,
    list.map((message) => [
      message.id,
      message.publisher,
      message.subject,
      toJsonText(message.payload),
      message.headers === undefined ? null : toJsonText(message.headers),
      createdAt,
    ]),
  );
}

function text(row: Record<string, unknown>, column: string): string {
  const value = row[column];
  if (typeof value !== 'string') throw new TypeError(`Outbox.${column} is not text`);
  return value;
}

/**
 * Reads up to `limit` unpublished rows of one publisher, oldest first, with plain SQL on the pool (the
 * relay runs this for every batch of every service). It holds no transaction: the relay publishes them and
 * then calls {@link markPublished}. Two relays may read the same rows; the duplicate publish is dropped by
 * JetStream through `Nats-Msg-Id`.
 */
export async function fetchUnpublished(
  db: Pick<Db, 'pool'>,
  publisher: string,
  limit: number,
): Promise<PendingOutboxMessage[]> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const result = await poolSql(db).query(
    `SELECT "seq"::text AS "seq", "id"::text AS "id", "subject", "payload"::text AS "payload",
            "headers"::text AS "headers", "attempts", ("createdAt" AT TIME ZONE 'UTC') AS "createdAt"
       FROM "Outbox" WHERE "publisher" = $1 AND "publishedAt" IS NULL ORDER BY "Outbox"."seq" LIMIT $2`,
    [publisher, limit],
  );
  return result.rows.map((row) => {
    const payload: Prisma.JsonValue = JSON.parse(text(row, 'payload'));
    const headers: Prisma.JsonValue = row['headers'] === null ? null : JSON.parse(text(row, 'headers'));
    const attempts = row['attempts'];
    const createdAt = row['createdAt'];
    if (typeof attempts !== 'number' || !(createdAt instanceof Date))
      throw new TypeError('malformed Outbox row');
    return {
      seq: BigInt(text(row, 'seq')),
      id: text(row, 'id'),
      subject: text(row, 'subject'),
      payload,
      headers: toHeaders(headers),
      attempts,
      createdAt,
    };
  });
}

/**
 * Marks rows as published; returns how many were still unpublished. The commit does not wait for its WAL
 * flush: a mark lost in a crash only makes the relay publish the row again, and JetStream drops the
 * duplicate by `Nats-Msg-Id` (see docs/decisions/2026-11-26-sql-on-hot-paths.md).
 */
export async function markPublished(db: Pick<Db, 'pool'>, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  return sqlTransaction(
    db,
    async (sql) => {
      const result = await sql.query(
        `UPDATE "Outbox" SET "publishedAt" = (now() AT TIME ZONE 'UTC')
          WHERE "id" = ANY($1::uuid[]) AND "publishedAt" IS NULL`,
        [[...ids]],
      );
      return result.rowCount;
    },
    { durable: false },
  );
}

/** Counts a failed publish of one row and keeps the error's message (the row stays unpublished). */
export async function recordPublishFailure(db: Pick<Db, 'pool'>, id: string, error: unknown): Promise<void> {
  await poolSql(db).query(
    `UPDATE "Outbox" SET "attempts" = "attempts" + 1, "lastError" = $2 WHERE "id" = $1::uuid`,
    [id, toText(errorMessage(error)).slice(0, MAX_ERROR_LENGTH)],
  );
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
