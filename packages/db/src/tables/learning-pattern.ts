import { prepared } from '../prepared.js';
import type { PatternType } from '@tandem/contracts';
import type { Selectable } from 'kysely';
import { json } from '../column-types.js';
import type { LearningPattern as LearningPatternTable } from '../generated/kysely.js';
import { parseStored, type RowSchema } from '../rows.js';
import type { Tx } from '../transaction.js';
import { queryable, utcNow, type DbOrTx } from '../queryable.js';

// The only module that writes "LearningPattern" (writer: learning). A pattern is one row per (type,
// scope, signature); its counts change under the row's lock, so parallel outcomes all count.

/** Whether a pattern is answered to planners (`active`), not yet (`candidate`) or no more (`retired`). */
export type PatternStatus = Selectable<LearningPatternTable>['status'];
/** Where a pattern was learned from. */
export type PatternSource = Selectable<LearningPatternTable>['source'];

/** The identity of a pattern. */
export interface PatternKey {
  type: PatternType;
  scope: string;
  signature: string;
}

/** Inserts a pattern as a `candidate` unless its key exists (then nothing changes). */
export async function ensurePattern(
  tx: Tx,
  pattern: PatternKey & { id: string; content: string; source: PatternSource; provenance: unknown },
): Promise<void> {
  await insertCandidate(tx, pattern);
}

const insertCandidate = prepared(
  (db, p: PatternKey & { id: string; content: string; source: PatternSource; provenance: unknown }) =>
    db
      .insertInto('LearningPattern')
      .values({
        id: p.id,
        type: p.type,
        scope: p.scope,
        signature: p.signature,
        content: p.content,
        source: p.source,
        provenance: json(p.provenance),
        status: 'candidate',
        createdAt: utcNow(),
        updatedAt: utcNow(),
      })
      .onConflict((conflict) => conflict.columns(['type', 'scope', 'signature']).doNothing()),
);

/** A pattern's counts and learned state, as locked for an update. */
export interface LockedPattern<TProvenance> {
  id: string;
  successCount: number;
  failureCount: number;
  provenance: TProvenance;
}

/**
 * Reads a pattern and locks its row (FOR UPDATE) until the transaction ends; its provenance is parsed
 * with the caller's schema (DB.ROW_INVALID when it does not match). Null when the pattern does not exist.
 */
export async function lockPattern<TProvenance>(
  tx: Tx,
  key: PatternKey,
  provenance: RowSchema<TProvenance>,
): Promise<LockedPattern<TProvenance> | null> {
  const row = await tx
    .selectFrom('LearningPattern')
    .select(['id', 'successCount', 'failureCount', 'provenance'])
    .where('type', '=', key.type)
    .where('scope', '=', key.scope)
    .where('signature', '=', key.signature)
    .forUpdate()
    .executeTakeFirst();
  if (row === undefined) return null;
  return {
    id: row.id,
    successCount: row.successCount,
    failureCount: row.failureCount,
    provenance: parseStored(provenance, row.provenance, 'LearningPattern.provenance'),
  };
}

/** Stores a pattern's new counts, confidence, learned state, text and status, and counts the version. */
export async function updatePattern(
  tx: Tx,
  id: string,
  update: {
    successCount: number;
    failureCount: number;
    confidence: number;
    provenance: unknown;
    content: string;
    status: PatternStatus;
  },
): Promise<void> {
  await tx
    .updateTable('LearningPattern')
    .set((eb) => ({
      successCount: update.successCount,
      failureCount: update.failureCount,
      confidence: update.confidence,
      provenance: json(update.provenance),
      content: update.content,
      status: update.status,
      version: eb('version', '+', 1),
      updatedAt: utcNow(),
    }))
    .where('id', '=', id)
    .execute();
}

/** An active pattern as answered to planners and the executor. */
export interface ActivePattern {
  id: string;
  type: PatternType;
  scope: string;
  content: string;
  successCount: number;
  failureCount: number;
  confidence: number;
}

/**
 * The active patterns of a scope (of the given types, or any), most confident first, then most
 * successful, at most `limit`.
 */
export async function activePatterns(
  db: DbOrTx,
  query: { scope: string; types: readonly PatternType[] | null; limit: number },
): Promise<ActivePattern[]> {
  let select = queryable(db)
    .selectFrom('LearningPattern')
    .select(['id', 'type', 'scope', 'content', 'successCount', 'failureCount', 'confidence'])
    .where('status', '=', 'active')
    .where('scope', '=', query.scope);
  if (query.types !== null) select = select.where('type', 'in', [...query.types]);
  return select.orderBy('confidence', 'desc').orderBy('successCount', 'desc').limit(query.limit).execute();
}
