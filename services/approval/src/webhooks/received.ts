/*
 * Replay protection for inbound signed webhooks. A signature stays valid for the verification window
 * (five minutes either way), so within it a captured request could be sent again: each `webhook-id` is
 * recorded in the transaction that acts on the webhook (`claimWebhookId`), and a second one with the
 * same id is refused. Ids older than the window can be pruned (`pruneReceivedWebhooks`): their
 * signatures no longer verify. Both are packages/db's, the one writer of ReceivedWebhook.
 */
export { claimWebhookId, pruneReceivedWebhooks } from '@tandem/db';
