import { prepared } from '../prepared.js';
import type { DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';

/*
 * The ProcessedMessage table (the inbox): the one module that writes it. A consumer records each message
 * it handled in the handler's transaction. Both statements are prepared once (prepared.ts).
 */

const insertProcessed = prepared((db, p: { consumer: string; messageId: string; processedAt: Date }) =>
  db
    .insertInto('ProcessedMessage')
    .values({ consumer: p.consumer, messageId: p.messageId, processedAt: p.processedAt })
    .onConflict((conflict) => conflict.doNothing()),
);

/**
 * Records that `consumer` handled `messageId`, in the handler's transaction. Returns true the first
 * time, false when it was already recorded: the handler then skips its effects and acks, so a
 * redelivered message is harmless. A concurrent duplicate waits for the first transaction and gets
 * false once it commits (or true if it rolled back).
 */
export async function markProcessed(tx: Tx, consumer: string, messageId: string): Promise<boolean> {
  const result = await insertProcessed(tx, { consumer, messageId, processedAt: new Date() });
  return result.numAffectedRows === 1n;
}

/**
 * Whether `consumer` already recorded `messageId` (a read on its own, outside the handler's transaction:
 * a hint to skip expensive work, never the guard itself, which is {@link markProcessed}).
 */
export async function isProcessed(db: DbOrTx, consumer: string, messageId: string): Promise<boolean> {
  return (await selectProcessed(db, { consumer, messageId })).rows.length > 0;
}

const selectProcessed = prepared((db, p: { consumer: string; messageId: string }) =>
  db
    .selectFrom('ProcessedMessage')
    .select('messageId')
    .where('consumer', '=', p.consumer)
    .where('messageId', '=', p.messageId),
);
