import { utcNow, queryable, type DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';

// The only module that writes "Agent" (writer: approval): an agent that tasks are submitted for,
// created the first time its trust changes.

/** Creates the agent's row unless it exists. */
export async function ensureAgent(tx: Tx, agentId: string): Promise<void> {
  await tx
    .insertInto('Agent')
    .values({ id: agentId, createdAt: utcNow() })
    .onConflict((conflict) => conflict.doNothing())
    .execute();
}

/** Whether the agent has a row (its trust changed at least once). */
export async function agentExists(source: DbOrTx, agentId: string): Promise<boolean> {
  const row = await queryable(source)
    .selectFrom('Agent')
    .select('id')
    .where('id', '=', agentId)
    .executeTakeFirst();
  return row !== undefined;
}
