import type { Db, PrismaTx } from './client.js';
import type pg from 'pg';
import { sql } from 'kysely';
import { afterCommit, poolOf } from './commit-hooks.js';
import { json } from './column-types.js';
import { poolSql, sqlTransaction, utcWallClock, type Sql } from './sql.js';
import type { Tx } from './transaction.js';
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
/** The database's clock (not the transaction's start) as UTC wall-clock time, like Prisma's timestamps. */
const UTC_CLOCK = `(clock_timestamp() AT TIME ZONE 'UTC')`;
const UTC_CLOCK_SQL = sql.raw(UTC_CLOCK);

/**
 * Writes outbox rows in the caller's transaction (one multi-row INSERT per 1000 messages), so that the
 * messages exist if and only if the transaction's other changes commit.
 */
export async function enqueueOutboxPrisma(
  tx: PrismaTx,
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

/** A claim on outbox rows: who publishes them, and for how long the claim holds if it is not released. */
export interface OutboxClaim {
  /** The relay instance (unique per process). */
  holder: string;
  /** How long the claim lasts; then another relay may take the rows over. */
  leaseMs: number;
}

/**
 * The relay of a pool's service, as `enqueueOutboxSql` sees it: rows of `publisher` written in a plain-SQL
 * transaction are inserted already claimed by it (`claim()`), so no other relay and no poll publishes them,
 * and handed to `committed` right after COMMIT.
 */
export interface OutboxHandOver {
  /** The publisher whose rows this relay publishes. */
  publisher: string;
  /** The claim to insert rows with, or null (the relay is not running: rows stay unclaimed for the polls). */
  claim(): OutboxClaim | null;
  /** Rows that committed under the claim. */
  committed(messages: readonly OutboxMessage[]): void;
}

/** The hand-over of committed rows, by pool (the relay of the service that owns the pool). */
const handOvers = new WeakMap<pg.Pool, OutboxHandOver>();
/** Outbox writes made through Prisma transactions, which have no commit hook: the relay must read those. */
let prismaWrites = 0;

/**
 * Makes `handOver` the relay of the pool's plain-SQL transactions (see {@link OutboxHandOver}); returns a
 * function that removes it again (if it is still the one registered). Rows written through Prisma are
 * found by the relays' polls.
 */
export function onOutboxCommitted(db: Pick<Db, 'pool'>, handOver: OutboxHandOver): () => void {
  handOvers.set(db.pool, handOver);
  return () => {
    if (handOvers.get(db.pool) === handOver) handOvers.delete(db.pool);
  };
}

/** How many outbox writes went through Prisma transactions in this process (for the relay). */
export function prismaOutboxWrites(): number {
  return prismaWrites;
}

/**
 * {@link enqueueOutboxPrisma} on a plain-SQL transaction (see `sqlTransaction`). Rows of the pool's relay's
 * publisher are inserted claimed by that relay and handed to it after COMMIT (one statement for any
 * number of rows).
 */
export async function enqueueOutboxSql(
  sql: Sql,
  messages: OutboxMessage | readonly OutboxMessage[],
): Promise<void> {
  const list = isMessageList(messages) ? messages : [messages];
  if (list.length === 0) return;
  const pool = poolOf(sql);
  const handOver = pool === undefined ? undefined : handOvers.get(pool);
  const claim = handOver?.claim() ?? null;
  const claimed =
    handOver === undefined || claim === null
      ? []
      : list.filter((message) => message.publisher === handOver.publisher);
  if (handOver !== undefined && claimed.length > 0) afterCommit(sql, () => handOver.committed(claimed));
  const createdAt = utcWallClock();
  // The lease runs from the statement's clock on the database, which the claims compare against.
  await sql.query(
    `INSERT INTO "Outbox" ("id", "publisher", "subject", "payload", "headers", "createdAt", "claimedBy", "claimedUntil")
     SELECT row."id", row."publisher", row."subject", row."payload", row."headers", $6::timestamp,
            CASE WHEN row."publisher" = $7 THEN $8 END,
            CASE WHEN row."publisher" = $7 THEN ${UTC_CLOCK} + $9 * interval '1 millisecond' END
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[])
         AS row("id", "publisher", "subject", "payload", "headers")`,
    [
      list.map((message) => message.id),
      list.map((message) => message.publisher),
      list.map((message) => message.subject),
      list.map((message) => toJsonText(message.payload)),
      list.map((message) => (message.headers === undefined ? null : toJsonText(message.headers))),
      createdAt,
      claim === null || handOver === undefined ? null : handOver.publisher,
      claim?.holder ?? null,
      claim?.leaseMs ?? 0,
    ],
  );
}

/**
 * Writes outbox rows in the caller's transaction, so that the messages exist if and only if its other
 * changes commit. Rows of the pool's relay's publisher are inserted already claimed by that relay and
 * handed to it right after COMMIT (see {@link OutboxHandOver}); the others wait for their relays' polls.
 */
export async function enqueueOutbox(
  tx: Tx,
  messages: OutboxMessage | readonly OutboxMessage[],
): Promise<void> {
  const list = isMessageList(messages) ? messages : [messages];
  if (list.length === 0) return;
  const pool = poolOf(tx);
  const handOver = pool === undefined ? undefined : handOvers.get(pool);
  const claim = handOver?.claim() ?? null;
  const claimedBy = claim === null || handOver === undefined ? undefined : handOver.publisher;
  const claimed = claimedBy === undefined ? [] : list.filter((message) => message.publisher === claimedBy);
  if (handOver !== undefined && claimed.length > 0) afterCommit(tx, () => handOver.committed(claimed));
  const createdAt = new Date();
  // The lease runs from the statement's clock on the database, which the claims compare against.
  const claimedUntil =
    claim === null ? null : sql<Date>`${UTC_CLOCK_SQL} + ${claim.leaseMs} * interval '1 millisecond'`;
  for (let start = 0; start < list.length; start += ROWS_PER_INSERT) {
    const rows = list.slice(start, start + ROWS_PER_INSERT).map((message) => {
      const mine = claimedBy !== undefined && message.publisher === claimedBy;
      return {
        id: message.id,
        publisher: message.publisher,
        subject: message.subject,
        // Made safe here, once for every publisher: a NUL in a payload would fail the whole transaction.
        payload: json(message.payload),
        headers: message.headers === undefined ? null : json(message.headers),
        createdAt,
        claimedBy: mine ? (claim?.holder ?? null) : null,
        claimedUntil: mine ? claimedUntil : null,
      };
    });
    await tx.insertInto('Outbox').values(rows).execute();
  }
}

function text(row: Record<string, unknown>, column: string): string {
  const value = row[column];
  if (typeof value !== 'string') throw new TypeError(`Outbox.${column} is not text`);
  return value;
}

const PENDING_COLUMNS = `"seq"::text AS "seq", "id"::text AS "id", "subject", "payload"::text AS "payload",
  "headers"::text AS "headers", "attempts", ("createdAt" AT TIME ZONE 'UTC') AS "createdAt"`;

function pendingRow(row: Record<string, unknown>): PendingOutboxMessage {
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
}

function assertLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`limit must be a positive integer, got ${limit}`);
}

/**
 * Reads up to `limit` unpublished rows of one publisher, oldest first, without claiming them (for tests and
 * inspection; the relay uses {@link claimUnpublished}).
 */
export async function fetchUnpublished(
  db: Pick<Db, 'pool'>,
  publisher: string,
  limit: number,
): Promise<PendingOutboxMessage[]> {
  assertLimit(limit);
  const result = await poolSql(db).query(
    `SELECT ${PENDING_COLUMNS}
       FROM "Outbox" WHERE "publisher" = $1 AND "publishedAt" IS NULL AND "deadLetteredAt" IS NULL
      ORDER BY "Outbox"."seq" LIMIT $2`,
    [publisher, limit],
  );
  return result.rows.map(pendingRow);
}

/**
 * Claims up to `limit` unpublished rows of one publisher, oldest first, that nobody holds (never claimed,
 * released, or whose lease ran out), for `claim.leaseMs`; returns them in seq order. One statement: rows
 * another relay is claiming at the same moment are skipped (`FOR UPDATE SKIP LOCKED`), and a row claimed
 * meanwhile fails the re-check of the lease, so two relays never claim the same row at once.
 */
export async function claimUnpublished(
  db: Pick<Db, 'pool'>,
  publisher: string,
  claim: OutboxClaim,
  limit: number,
): Promise<PendingOutboxMessage[]> {
  assertLimit(limit);
  const result = await poolSql(db).query(
    `UPDATE "Outbox" SET "claimedBy" = $2, "claimedUntil" = ${UTC_CLOCK} + $3 * interval '1 millisecond'
      WHERE "seq" IN (
        SELECT "seq" FROM "Outbox"
         WHERE "publisher" = $1 AND "publishedAt" IS NULL AND "deadLetteredAt" IS NULL
           AND ("claimedUntil" IS NULL OR "claimedUntil" < ${UTC_CLOCK})
         ORDER BY "seq" LIMIT $4
         FOR UPDATE SKIP LOCKED)
      RETURNING ${PENDING_COLUMNS}`,
    [publisher, claim.holder, claim.leaseMs, limit],
  );
  return result.rows.map(pendingRow).sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
}

/**
 * Gives up `holder`'s claim on rows it did not publish (a publish failed), so the next claim, of any relay,
 * takes them again at once, in order. Rows already published or claimed by someone else are left alone.
 */
export async function releaseClaims(
  db: Pick<Db, 'pool'>,
  holder: string,
  ids: readonly string[],
): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await poolSql(db).query(
    `UPDATE "Outbox" SET "claimedBy" = NULL, "claimedUntil" = NULL
      WHERE "id" = ANY($1::uuid[]) AND "claimedBy" = $2 AND "publishedAt" IS NULL`,
    [[...ids], holder],
  );
  return result.rowCount;
}

/**
 * Marks rows as published; returns how many were still unpublished. The commit is durable: a mark lost in
 * a Postgres crash would have the relay publish the row again, which a plain NATS subscriber would see
 * twice (JetStream's own dedup window hides it only from stream consumers, and only for 2 minutes).
 */
export async function markPublished(db: Pick<Db, 'pool'>, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await poolSql(db).query(
    `UPDATE "Outbox" SET "publishedAt" = (now() AT TIME ZONE 'UTC')
      WHERE "id" = ANY($1::uuid[]) AND "publishedAt" IS NULL`,
    [[...ids]],
  );
  return result.rowCount;
}

/** Counts a failed publish of one row and keeps the error's message (the row stays unpublished). */
export async function recordPublishFailure(db: Pick<Db, 'pool'>, id: string, error: unknown): Promise<void> {
  await poolSql(db).query(
    `UPDATE "Outbox" SET "attempts" = "attempts" + 1, "lastError" = $2 WHERE "id" = $1::uuid`,
    [id, toText(errorMessage(error)).slice(0, MAX_ERROR_LENGTH)],
  );
}

/** An outbox row to dead-letter: it can never be published. */
export interface OutboxDeadLetter {
  /** The outbox id (also the DeadLetter's id and messageId). */
  id: string;
  /** The DeadLetter's `consumer`: who gave up (the relay: `outbox:<publisher>`). */
  consumer: string;
  /** A `DOMAIN.REASON` code, e.g. `BUS.OUTBOX_UNPUBLISHABLE`. */
  code: string;
  /** Why, readable (the publish error). */
  reason: string;
}

/**
 * Dead-letters an unpublished outbox row in one transaction: a DeadLetter row with the row's subject,
 * payload and headers and the reason; the row marked `deadLetteredAt` (the relay never tries it again);
 * and `replacements` (e.g. a typed failure event for the row's task) enqueued beside it. Returns false,
 * writing nothing, when the row was published or dead-lettered already.
 */
export async function deadLetterOutboxRow(
  db: Pick<Db, 'pool'>,
  deadLetter: OutboxDeadLetter,
  replacements: readonly OutboxMessage[] = [],
): Promise<boolean> {
  const reason = toText(deadLetter.reason).slice(0, MAX_ERROR_LENGTH);
  return sqlTransaction(db, async (sql) => {
    const marked = await sql.query(
      `UPDATE "Outbox" SET "deadLetteredAt" = ${UTC_CLOCK}, "lastError" = $2, "attempts" = "attempts" + 1
        WHERE "id" = $1::uuid AND "publishedAt" IS NULL AND "deadLetteredAt" IS NULL`,
      [deadLetter.id, reason],
    );
    if (marked.rowCount === 0) return false;
    await sql.query(
      `INSERT INTO "DeadLetter"
         ("id", "consumer", "subject", "streamSeq", "messageId", "code", "reason", "payload", "headers", "deliveryCount", "createdAt")
       SELECT "id", $2, "subject", NULL, "id"::text, $3, $4, "payload"::text, "headers", "attempts", ${UTC_CLOCK}
         FROM "Outbox" WHERE "id" = $1::uuid
       ON CONFLICT DO NOTHING`,
      [deadLetter.id, deadLetter.consumer, deadLetter.code, reason],
    );
    if (replacements.length > 0) await enqueueOutboxSql(sql, replacements);
    return true;
  });
}

/** A stored outbox payload, as a claim check resolves it. */
export interface StoredOutboxPayload {
  /** The subject the row was published on. */
  subject: string;
  /** The payload as JSON text. */
  payload: string;
}

/**
 * Reads the payload of one outbox row by id (a claim check's reference), or null when there is none. The
 * rows are never deleted today; a cleanup must keep every row at least as long as the streams keep
 * messages (7 days by default), or claim checks still in a stream stop resolving.
 */
export async function readOutboxPayload(
  db: Pick<Db, 'pool'>,
  id: string,
): Promise<StoredOutboxPayload | null> {
  const result = await poolSql(db).query(
    `SELECT "subject", "payload"::text AS "payload" FROM "Outbox" WHERE "id" = $1::uuid`,
    [id],
  );
  const row = result.rows[0];
  if (row === undefined) return null;
  return { subject: text(row, 'subject'), payload: text(row, 'payload') };
}

/**
 * How long (ms, on the database's clock) the oldest row of `publisher` that is neither published nor
 * dead-lettered has waited; null when none waits. A relay that is draining keeps it near zero.
 */
export async function oldestUnpublishedAgeMs(
  db: Pick<Db, 'pool'>,
  publisher: string,
): Promise<number | null> {
  const result = await poolSql(db).query(
    `SELECT (EXTRACT(EPOCH FROM (${UTC_CLOCK} - "createdAt")) * 1000)::float8 AS "ageMs"
       FROM "Outbox" WHERE "publisher" = $1 AND "publishedAt" IS NULL AND "deadLetteredAt" IS NULL
      ORDER BY "seq" LIMIT 1`,
    [publisher],
  );
  const age = result.rows[0]?.['ageMs'];
  if (age === undefined) return null;
  if (typeof age !== 'number') throw new TypeError('Outbox age is not a number');
  return Math.max(0, age);
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
