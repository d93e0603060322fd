import { utcNow, queryable, type DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';

// The only module that writes "ReceivedWebhook" (writer: approval): the ids of signed webhooks already
// acted on (replay protection within the signature's window).

/**
 * Records a received `webhook-id` in the caller's transaction; false when it was seen before (a replay).
 * A concurrent duplicate waits for the first transaction and gets false once it commits.
 */
export async function claimWebhookId(tx: Tx, webhookId: string): Promise<boolean> {
  const result = await tx
    .insertInto('ReceivedWebhook')
    .values({ webhookId, receivedAt: utcNow() })
    .onConflict((conflict) => conflict.doNothing())
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}

/** Deletes received ids older than `olderThan`; returns how many. */
export async function pruneReceivedWebhooks(source: DbOrTx, olderThan: Date): Promise<number> {
  const result = await queryable(source)
    .deleteFrom('ReceivedWebhook')
    .where('receivedAt', '<', olderThan)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
