import { UTC_NOW, type Db, type Sql } from '@tandem/db';

/*
 * Replay protection for inbound signed webhooks. A signature stays valid for the verification window
 * (five minutes either way), so within it a captured request could be sent again: each `webhook-id` is
 * recorded in the transaction that acts on the webhook, and a second one with the same id is refused.
 * Ids older than the window can be pruned: their signatures no longer verify.
 */

/**
 * Records a received `webhook-id` in the caller's transaction; false when it was seen before (a replay).
 * A concurrent duplicate waits for the first transaction and gets false once it commits.
 */
export async function claimWebhookId(sql: Sql, webhookId: string): Promise<boolean> {
  const result = await sql.query(
    `INSERT INTO "ReceivedWebhook" ("webhookId", "receivedAt") VALUES ($1, ${UTC_NOW}) ON CONFLICT DO NOTHING`,
    [webhookId],
  );
  return result.rowCount === 1;
}

/** Deletes received ids older than `olderThan` (keep at least the verification window); returns how many. */
export async function pruneReceivedWebhooks(db: Db, olderThan: Date): Promise<number> {
  const { count } = await db.prisma.receivedWebhook.deleteMany({ where: { receivedAt: { lt: olderThan } } });
  return count;
}
