import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { TrustEvent as TrustEventTable } from '../generated/kysely.js';
import { utcNow, queryable, type DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';

// The only module that writes "TrustEvent" (writer: approval): every change of an agent's trust, with
// its reason and source (append-only; one change per source, agent and class).

/** What changed an agent's trust. */
export type TrustEventKind = Selectable<TrustEventTable>['kind'];

/** A trust event to record. */
export interface NewTrustEvent {
  agentId: string;
  actionClass: string;
  kind: TrustEventKind;
  sourceEvent: string;
  scoreBefore: number;
  scoreAfter: number;
  reason: string;
  actor: string | null;
}

/** Records a trust event; false when its source was already applied to this agent and class. */
export async function insertTrustEvent(tx: Tx, event: NewTrustEvent): Promise<boolean> {
  const result = await tx
    .insertInto('TrustEvent')
    .values({ id: randomUUID(), ...event, createdAt: utcNow() })
    .onConflict((conflict) => conflict.columns(['sourceEvent', 'agentId', 'actionClass']).doNothing())
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}

/** The agent's latest trust events, newest first. */
export async function trustHistory(
  source: DbOrTx,
  agentId: string,
  limit: number,
): Promise<Array<Omit<NewTrustEvent, 'agentId'> & { createdAt: Date }>> {
  return queryable(source)
    .selectFrom('TrustEvent')
    .select([
      'actionClass',
      'kind',
      'sourceEvent',
      'scoreBefore',
      'scoreAfter',
      'reason',
      'actor',
      'createdAt',
    ])
    .where('agentId', '=', agentId)
    .orderBy('createdAt', 'desc')
    .orderBy('id')
    .limit(limit)
    .execute();
}
