import type { Selectable } from 'kysely';
import { json } from '../column-types.js';
import type { WebhookDelivery as WebhookDeliveryTable } from '../generated/kysely.js';
import { utcNow, queryable, type DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';

// The only module that writes "WebhookDelivery" (writer: approval): signed webhooks to approvers,
// queued in the transaction that decides to notify and sent afterwards by the delivery loop.

/** A delivery's state: pending (waiting for its next attempt) | delivered | failed. */
export type WebhookDeliveryStatus = Selectable<WebhookDeliveryTable>['status'];
/** The webhook type (contracts' ApproverWebhookType). */
export type WebhookDeliveryEvent = Selectable<WebhookDeliveryTable>['event'];

/** A delivery to queue. */
export interface NewWebhookDeliveryRow {
  id: string;
  webhookId: string;
  url: string;
  event: WebhookDeliveryEvent;
  /** The JSON body. */
  payload: unknown;
  endpoint: string;
  approvalId: string;
  /** When it was queued: its first attempt is due then. */
  at: Date;
}

/**
 * Queues deliveries in the caller's transaction, one statement; a delivery whose (webhookId, url)
 * exists is skipped, so a handler that runs twice notifies once. Returns how many were queued.
 */
export async function insertWebhookDeliveries(
  tx: Tx,
  rows: readonly NewWebhookDeliveryRow[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const result = await tx
    .insertInto('WebhookDelivery')
    .values(
      rows.map((row) => ({
        id: row.id,
        webhookId: row.webhookId,
        url: row.url,
        event: row.event,
        payload: json(row.payload),
        status: 'pending' as const,
        attempts: 0,
        nextAttemptAt: row.at,
        endpoint: row.endpoint,
        approvalId: row.approvalId,
        createdAt: row.at,
        updatedAt: row.at,
      })),
    )
    .onConflict((conflict) => conflict.doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n);
}

/** A claimed delivery, its payload unparsed. */
export interface ClaimedWebhookDelivery {
  id: string;
  webhookId: string;
  url: string;
  event: WebhookDeliveryEvent;
  payload: unknown;
  attempts: number;
  endpoint: string | null;
}

/**
 * Claims up to `limit` pending deliveries due at `now`, earliest first, and moves their next attempt to
 * `leaseUntil` (a lease: replicas never send one attempt at once, and a replica that dies mid-request
 * leaves its rows for when the lease runs out). One statement, so the row locks (FOR UPDATE SKIP
 * LOCKED) last only until the lease is written.
 */
export async function claimDueWebhookDeliveries(
  source: DbOrTx,
  input: { now: Date; limit: number; leaseUntil: Date },
): Promise<ClaimedWebhookDelivery[]> {
  return queryable(source)
    .with('due', (db) =>
      db
        .selectFrom('WebhookDelivery')
        .select('id')
        .where('status', '=', 'pending')
        .where('nextAttemptAt', '<=', input.now)
        .orderBy('nextAttemptAt')
        .limit(input.limit)
        .forUpdate()
        .skipLocked(),
    )
    .updateTable('WebhookDelivery as d')
    .from('due')
    .set({ nextAttemptAt: input.leaseUntil, updatedAt: utcNow() })
    .whereRef('d.id', '=', 'due.id')
    .returning(['d.id', 'd.webhookId', 'd.url', 'd.event', 'd.payload', 'd.attempts', 'd.endpoint'])
    .execute();
}

/**
 * Records one attempt of a claimed delivery, only if nobody recorded that attempt first (the row is
 * still pending with `attemptsBefore` attempts); false when another worker did.
 */
export async function recordWebhookAttempt(
  source: DbOrTx,
  input: {
    id: string;
    status: WebhookDeliveryStatus;
    attempts: number;
    attemptsBefore: number;
    lastStatus: number | null;
    lastError: string | null;
    nextAttemptAt: Date | null;
  },
): Promise<boolean> {
  const result = await queryable(source)
    .updateTable('WebhookDelivery')
    .set({
      status: input.status,
      attempts: input.attempts,
      lastStatus: input.lastStatus,
      lastError: input.lastError,
      nextAttemptAt: input.nextAttemptAt,
      updatedAt: utcNow(),
    })
    .where('id', '=', input.id)
    .where('status', '=', 'pending')
    .where('attempts', '=', input.attemptsBefore)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
