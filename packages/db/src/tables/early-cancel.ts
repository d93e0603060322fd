import { utcNow, queryable, type DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';

/**
 * The only writer of EarlyCancel (executor): cancel requests that named a task not stored yet, kept until
 * they expire.
 */

/** A cancel request to keep. */
export interface NewEarlyCancel {
  id: string;
  taskId: string | null;
  source: string | null;
  externalId: string | null;
  reason: string | null;
  requestedBy: string | null;
  expiresAt: Date;
}

/** Keeps a cancel request whose task is not stored yet, in the caller's transaction. */
export async function keepEarlyCancel(tx: Tx, cancel: NewEarlyCancel): Promise<void> {
  await tx.insertInto('EarlyCancel').values(cancel).execute();
}

/**
 * Unexpired early cancels that name a stored task, by task id or by the submitter's request (`source` +
 * `externalId`); only those of `taskId` when it is given.
 */
export async function matchingEarlyCancels(
  source: DbOrTx,
  input: { taskId: string | null; limit: number },
): Promise<Array<{ id: string; taskId: string }>> {
  const db = queryable(source);
  const only = input.taskId;
  const byId = db
    .selectFrom('EarlyCancel as e')
    .innerJoin('Task as t', 't.id', 'e.taskId')
    .select(['e.id', 't.id as taskId'])
    .where('e.expiresAt', '>', utcNow())
    .$if(only !== null, (query) => query.where('t.id', '=', only ?? ''));
  const byRequest = db
    .selectFrom('EarlyCancel as e')
    .innerJoin('Task as t', (join) =>
      join.onRef('t.source', '=', 'e.source').onRef('t.externalId', '=', 'e.externalId'),
    )
    .select(['e.id', 't.id as taskId'])
    .where('e.expiresAt', '>', utcNow())
    .$if(only !== null, (query) => query.where('t.id', '=', only ?? ''));
  return byId.unionAll(byRequest).limit(input.limit).execute();
}

/**
 * Takes a kept cancel request (deletes it) in the caller's transaction, so that one replica applies it;
 * null when it is gone (applied or pruned).
 */
export async function takeEarlyCancel(
  tx: Tx,
  id: string,
): Promise<{ reason: string | null; requestedBy: string | null } | null> {
  const row = await tx
    .deleteFrom('EarlyCancel')
    .where('id', '=', id)
    .returning(['reason', 'requestedBy'])
    .executeTakeFirst();
  return row ?? null;
}

/** Forgets expired early cancels. */
export async function pruneEarlyCancels(source: DbOrTx): Promise<void> {
  await queryable(source).deleteFrom('EarlyCancel').where('expiresAt', '<=', utcNow()).execute();
}
