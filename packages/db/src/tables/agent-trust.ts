import { utcNow, queryable, type DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';
import { ensureAgent } from './agent.js';

// The only module that writes "AgentTrust" (writer: approval): an agent's earned trust per action
// class. Its history is TrustEvent (append-only, tables/trust-event.ts).

/** A stored trust state. */
export interface StoredTrust {
  score: number;
  successes: number;
  failures: number;
  cap: number | null;
}

/** A class row of an agent's trust. */
export interface StoredAgentTrust extends StoredTrust {
  agentId: string;
  actionClass: string;
  updatedAt: Date;
}

/** The agent's trust in each of `classes` that has a row. */
export async function agentTrustIn(
  source: DbOrTx,
  agentId: string,
  classes: readonly string[],
): Promise<Array<StoredTrust & { actionClass: string }>> {
  if (classes.length === 0) return [];
  return queryable(source)
    .selectFrom('AgentTrust')
    .select(['actionClass', 'score', 'successes', 'failures', 'cap'])
    .where('agentId', '=', agentId)
    .where('actionClass', 'in', [...classes])
    .execute();
}

/** Every class row of the agent, by class name. */
export async function agentTrustRows(source: DbOrTx, agentId: string): Promise<StoredAgentTrust[]> {
  return queryable(source)
    .selectFrom('AgentTrust')
    .select(['agentId', 'actionClass', 'score', 'successes', 'failures', 'cap', 'updatedAt'])
    .where('agentId', '=', agentId)
    .orderBy('actionClass')
    .execute();
}

/** The most recently changed class rows of every agent (for the trust gauge at start). */
export async function recentAgentTrust(source: DbOrTx, limit: number): Promise<StoredAgentTrust[]> {
  return queryable(source)
    .selectFrom('AgentTrust')
    .select(['agentId', 'actionClass', 'score', 'successes', 'failures', 'cap', 'updatedAt'])
    .orderBy('updatedAt', 'desc')
    .limit(limit)
    .execute();
}

/**
 * The agent's trust in one class, its row locked (FOR UPDATE) until the transaction ends; the agent and
 * the class row are created first when new (a new agent's state: zeros, no cap).
 */
export async function lockAgentTrust(tx: Tx, agentId: string, actionClass: string): Promise<StoredTrust> {
  await ensureAgent(tx, agentId);
  await tx
    .insertInto('AgentTrust')
    .values({ agentId, actionClass, score: 0, successes: 0, failures: 0, updatedAt: utcNow() })
    .onConflict((conflict) => conflict.doNothing())
    .execute();
  return tx
    .selectFrom('AgentTrust')
    .select(['score', 'successes', 'failures', 'cap'])
    .where('agentId', '=', agentId)
    .where('actionClass', '=', actionClass)
    .forUpdate()
    .executeTakeFirstOrThrow();
}

/** Stores a class row's new state (after {@link lockAgentTrust} in the same transaction). */
export async function updateAgentTrust(
  tx: Tx,
  agentId: string,
  actionClass: string,
  state: StoredTrust,
): Promise<void> {
  await tx
    .updateTable('AgentTrust')
    .set({
      score: state.score,
      successes: state.successes,
      failures: state.failures,
      cap: state.cap,
      updatedAt: utcNow(),
    })
    .where('agentId', '=', agentId)
    .where('actionClass', '=', actionClass)
    .execute();
}
