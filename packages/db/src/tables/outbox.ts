import type { JsonValue } from '@tandem/contracts';
import { sql, type RawBuilder } from 'kysely';
import type pg from 'pg';
import type { Db } from '../client.js';
import { afterCommit, poolOf } from '../commit-hooks.js';
import { prepared } from '../prepared.js';
import { queryable, type DbOrTx } from '../queryable.js';
import { toJsonText, toText } from '../text.js';
import { transaction, type Tx } from '../transaction.js';
import { recordOutboxDeadLetter } from './dead-letter.js';

/*
 * The Outbox table: the one module that writes it. Publishers enqueue rows in their own transactions
 * (`enqueueOutbox`); the relay claims, publishes, marks and dead-letters them with the functions below.
 */

/** A message to publish once the caller's transaction commits. */
export interface OutboxMessage {
  /** The message id; the relay publishes it as `Nats-Msg-Id`, so JetStream drops a second publish. */
  id: string;
  /** The service that owns the row; its relay publishes only its own rows. */
  publisher: string;
  /** The full NATS subject, prefix included. */
  subject: string;
  /** The message body (the event envelope), stored as JSONB. */
  payload: JsonValue;
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
  payload: JsonValue;
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
/** The database's clock (not the transaction's start) as UTC wall-clock time, like every timestamp column. */
const UTC_CLOCK = `(clock_timestamp() AT TIME ZONE 'UTC')`;
const UTC_CLOCK_SQL = sql.raw<Date>(UTC_CLOCK);

/** A claim on outbox rows: who publishes them, and for how long the claim holds if it is not released. */
export interface OutboxClaim {
  /** The relay instance (unique per process). */
  holder: string;
  /** How long the claim lasts; then another relay may take the rows over. */
  leaseMs: number;
}

/**
 * The relay of a pool's service, as `enqueueOutbox` sees it: rows of `publisher` written in a transaction
 * on the pool are inserted already claimed by it (`claim()`), so no other relay and no poll publishes them,
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

/**
 * Makes `handOver` the relay of the pool's transactions (see {@link OutboxHandOver}); returns a function
 * that removes it again (if it is still the one registered).
 */
export function onOutboxCommitted(db: Pick<Db, 'pool'>, handOver: OutboxHandOver): () => void {
  handOvers.set(db.pool, handOver);
  return () => {
    if (handOvers.get(db.pool) === handOver) handOvers.delete(db.pool);
  };
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
  const claimedBy = claim === null || handOver === undefined ? null : handOver.publisher;
  const claimed = claimedBy === null ? [] : list.filter((message) => message.publisher === claimedBy);
  if (handOver !== undefined && claimed.length > 0) afterCommit(tx, () => handOver.committed(claimed));
  const createdAt = new Date();
  for (let start = 0; start < list.length; start += ROWS_PER_INSERT) {
    const rows = list.slice(start, start + ROWS_PER_INSERT);
    await insertOutboxRows(tx, {
      ids: rows.map((message) => message.id),
      publishers: rows.map((message) => message.publisher),
      subjects: rows.map((message) => message.subject),
      // Made safe here, once for every publisher: a NUL in a payload would fail the whole transaction.
      payloads: rows.map((message) => toJsonText(message.payload)),
      headers: rows.map((message) => (message.headers === undefined ? null : toJsonText(message.headers))),
      createdAt,
      claimedBy,
      holder: claim?.holder ?? null,
      leaseMs: claim?.leaseMs ?? 0,
    });
  }
}

/**
 * One INSERT for any number of rows (arrays through `unnest`, so one statement text, prepared once): the
 * rows of `claimedBy` are inserted claimed by `holder` for `leaseMs` from the statement's clock on the
 * database, which the claims compare against.
 */
const insertOutboxRows = prepared(
  (
    db,
    p: {
      ids: string[];
      publishers: string[];
      subjects: string[];
      payloads: string[];
      headers: Array<string | null>;
      createdAt: Date;
      claimedBy: string | null;
      holder: string | null;
      leaseMs: number;
    },
  ) =>
    db
      .insertInto('Outbox')
      .columns(['id', 'publisher', 'subject', 'payload', 'headers', 'createdAt', 'claimedBy', 'claimedUntil'])
      .expression(
        sql`SELECT row."id", row."publisher", row."subject", row."payload", row."headers", ${p.createdAt}::timestamp,
                   CASE WHEN row."publisher" = ${p.claimedBy}::text THEN ${p.holder}::text END,
                   CASE WHEN row."publisher" = ${p.claimedBy}::text
                        THEN ${UTC_CLOCK_SQL} + ${p.leaseMs}::float8 * interval '1 millisecond' END
              FROM unnest(${p.ids}::uuid[], ${p.publishers}::text[], ${p.subjects}::text[],
                          ${p.payloads}::jsonb[], ${p.headers}::jsonb[])
                AS row("id", "publisher", "subject", "payload", "headers")`,
      ),
);

/** An id list as one bound array (`= any($1::uuid[])`): one statement text for any number of ids. */
function anyUuid(ids: readonly string[]): RawBuilder<string> {
  return sql<string>`any(${[...ids]}::uuid[])`;
}

/** The columns the relay reads of a pending row (payload and headers as JSON text, parsed once here). */
const PENDING_COLUMNS = [
  'seq',
  'id',
  'subject',
  sql<string>`"payload"::text`.as('payload'),
  sql<string | null>`"headers"::text`.as('headers'),
  'attempts',
  'createdAt',
] as const;

interface PendingRowText {
  seq: string;
  id: string;
  subject: string;
  payload: string;
  headers: string | null;
  attempts: number;
  createdAt: Date;
}

function pendingRow(row: PendingRowText): PendingOutboxMessage {
  // JSON text straight from jsonb: JSON by construction, parsed as the relay publishes it.
  const payload: JsonValue = JSON.parse(row.payload);
  const headers: JsonValue = row.headers === null ? null : JSON.parse(row.headers);
  return {
    seq: BigInt(row.seq),
    id: row.id,
    subject: row.subject,
    payload,
    headers: toHeaders(headers),
    attempts: row.attempts,
    createdAt: row.createdAt,
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
  db: DbOrTx,
  publisher: string,
  limit: number,
): Promise<PendingOutboxMessage[]> {
  assertLimit(limit);
  const rows = await queryable(db)
    .selectFrom('Outbox')
    .select(PENDING_COLUMNS)
    .where('publisher', '=', publisher)
    .where('publishedAt', 'is', null)
    .where('deadLetteredAt', 'is', null)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map(pendingRow);
}

/**
 * Claims up to `limit` unpublished rows of one publisher, oldest first, that nobody holds (never claimed,
 * released, or whose lease ran out), for `claim.leaseMs`; returns them in seq order. One statement: rows
 * another relay is claiming at the same moment are skipped (`FOR UPDATE SKIP LOCKED`), and a row claimed
 * meanwhile fails the re-check of the lease, so two relays never claim the same row at once.
 */
export async function claimUnpublished(
  db: DbOrTx,
  publisher: string,
  claim: OutboxClaim,
  limit: number,
): Promise<PendingOutboxMessage[]> {
  assertLimit(limit);
  const rows = await queryable(db)
    .updateTable('Outbox')
    .set({ claimedBy: claim.holder, claimedUntil: leaseEnd(claim.leaseMs) })
    .where('seq', 'in', (eb) =>
      eb
        .selectFrom('Outbox')
        .select('seq')
        .where('publisher', '=', publisher)
        .where('publishedAt', 'is', null)
        .where('deadLetteredAt', 'is', null)
        .where((row) => row.or([row('claimedUntil', 'is', null), row('claimedUntil', '<', UTC_CLOCK_SQL)]))
        .orderBy('seq')
        .limit(limit)
        .forUpdate()
        .skipLocked(),
    )
    .returning(PENDING_COLUMNS)
    .execute();
  return rows.map(pendingRow).sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
}

/** The end of a lease of `leaseMs` from now on the database's clock, which the claims compare against. */
function leaseEnd(leaseMs: number): RawBuilder<Date> {
  return sql<Date>`${UTC_CLOCK_SQL} + ${leaseMs} * interval '1 millisecond'`;
}

/**
 * Gives up `holder`'s claim on rows it did not publish (a publish failed), so the next claim, of any relay,
 * takes them again at once, in order. Rows already published or claimed by someone else are left alone.
 */
export async function releaseClaims(db: DbOrTx, holder: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await queryable(db)
    .updateTable('Outbox')
    .set({ claimedBy: null, claimedUntil: null })
    .where('id', '=', anyUuid(ids))
    .where('claimedBy', '=', holder)
    .where('publishedAt', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * Marks rows as published; returns how many were still unpublished. The commit is durable (outside a
 * transaction the statement commits by itself, with the server's `synchronous_commit`): a mark lost in a
 * Postgres crash would have the relay publish the row again, which a plain NATS subscriber would see
 * twice (JetStream's own dedup window hides it only from stream consumers, and only for 2 minutes).
 */
export async function markPublished(db: DbOrTx, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await updatePublished(db, { ids: [...ids] });
  return Number(result.numAffectedRows ?? 0n);
}

const updatePublished = prepared((db, p: { ids: string[] }) =>
  db
    .updateTable('Outbox')
    .set({ publishedAt: sql<Date>`(now() AT TIME ZONE 'UTC')` })
    .where('id', '=', sql<string>`any(${p.ids}::uuid[])`)
    .where('publishedAt', 'is', null),
);

/** Counts a failed publish of one row and keeps the error's message (the row stays unpublished). */
export async function recordPublishFailure(db: DbOrTx, id: string, error: unknown): Promise<void> {
  await queryable(db)
    .updateTable('Outbox')
    .set((eb) => ({
      attempts: eb('attempts', '+', 1),
      lastError: toText(errorMessage(error)).slice(0, MAX_ERROR_LENGTH),
    }))
    .where('id', '=', id)
    .execute();
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
 * and `replacements` (e.g. a typed failure event for the row's task) enqueued beside it, handed to the
 * pool's relay after COMMIT. Returns false, writing nothing, when the row was published or dead-lettered
 * already.
 */
export async function deadLetterOutboxRow(
  db: Pick<Db, 'kysely' | 'pool'>,
  deadLetter: OutboxDeadLetter,
  replacements: readonly OutboxMessage[] = [],
): Promise<boolean> {
  const reason = toText(deadLetter.reason).slice(0, MAX_ERROR_LENGTH);
  return transaction(db, async (tx) => {
    const marked = await tx
      .updateTable('Outbox')
      .set((eb) => ({ deadLetteredAt: UTC_CLOCK_SQL, lastError: reason, attempts: eb('attempts', '+', 1) }))
      .where('id', '=', deadLetter.id)
      .where('publishedAt', 'is', null)
      .where('deadLetteredAt', 'is', null)
      .executeTakeFirst();
    if (marked.numUpdatedRows === 0n) return false;
    await recordOutboxDeadLetter(tx, {
      outboxId: deadLetter.id,
      consumer: deadLetter.consumer,
      code: deadLetter.code,
      reason,
    });
    if (replacements.length > 0) await enqueueOutbox(tx, replacements);
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
export async function readOutboxPayload(db: DbOrTx, id: string): Promise<StoredOutboxPayload | null> {
  const row = await queryable(db)
    .selectFrom('Outbox')
    .select(['subject', sql<string>`"payload"::text`.as('payload')])
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? null : { subject: row.subject, payload: row.payload };
}

/**
 * How long (ms, on the database's clock) the oldest row of `publisher` that is neither published nor
 * dead-lettered has waited; null when none waits. A relay that is draining keeps it near zero.
 */
export async function oldestUnpublishedAgeMs(db: DbOrTx, publisher: string): Promise<number | null> {
  const row = await queryable(db)
    .selectFrom('Outbox')
    .select(sql<number>`(EXTRACT(EPOCH FROM (${UTC_CLOCK_SQL} - "createdAt")) * 1000)::float8`.as('ageMs'))
    .where('publisher', '=', publisher)
    .where('publishedAt', 'is', null)
    .where('deadLetteredAt', 'is', null)
    .orderBy('seq')
    .limit(1)
    .executeTakeFirst();
  if (row === undefined) return null;
  // float8 comes back from pg as a JS number; anything else is a broken row, never a default.
  if (typeof row.ageMs !== 'number') throw new TypeError('Outbox age is not a number');
  return Math.max(0, row.ageMs);
}

function isMessageList(value: OutboxMessage | readonly OutboxMessage[]): value is readonly OutboxMessage[] {
  return Array.isArray(value);
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
}

function toHeaders(value: JsonValue): Record<string, string> {
  const headers: Record<string, string> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return headers;
  for (const [name, headerValue] of Object.entries(value)) {
    if (typeof headerValue === 'string') headers[name] = headerValue;
  }
  return headers;
}
