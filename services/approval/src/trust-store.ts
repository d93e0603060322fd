import { randomUUID } from 'node:crypto';
import { UTC_NOW, type Sql } from '@tandem/db';
import {
  NEW_TRUST,
  applyTrustEvent,
  effectiveScore,
  type TrustEventKind,
  type TrustState,
} from './domain/trust.js';

/** One change of trust, as stored in `TrustEvent` (append-only) and applied to `AgentTrust`. */
export interface TrustChange {
  agentId: string;
  actionClass: string;
  kind: TrustEventKind;
  /** What caused it (`approval:<id>`, `step:<id>:finished`, ...): one change per source, agent and class. */
  sourceEvent: string;
  reason: string;
  actor: string | null;
  /** For `cap`: the new cap (null removes it). */
  cap?: number | null;
}

/** The applied change: the score before and after (effective scores, i.e. with the cap). */
export interface AppliedTrustChange {
  agentId: string;
  actionClass: string;
  kind: TrustEventKind;
  before: number;
  after: number;
  state: TrustState;
}

function finite(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** A trust state from an `AgentTrust` row (absent or unreadable values read as a new agent's). */
export function trustStateOf(row: Record<string, unknown> | undefined): TrustState {
  if (!row) return NEW_TRUST;
  const cap = row['cap'];
  return {
    score: finite(row['score'], 0),
    successes: finite(row['successes'], 0),
    failures: finite(row['failures'], 0),
    cap: typeof cap === 'number' && Number.isFinite(cap) ? cap : null,
  };
}

/** The agent's trust per action class (classes without a row are absent). */
export async function loadTrust(
  sql: Sql,
  agentId: string,
  classes: readonly string[],
): Promise<Map<string, TrustState>> {
  const result = await sql.query(
    `SELECT "actionClass", "score", "successes", "failures", "cap" FROM "AgentTrust"
      WHERE "agentId" = $1 AND "actionClass" = ANY($2::text[])`,
    [agentId, [...classes]],
  );
  const trust = new Map<string, TrustState>();
  for (const row of result.rows) {
    const actionClass = row['actionClass'];
    if (typeof actionClass === 'string') trust.set(actionClass, trustStateOf(row));
  }
  return trust;
}

/**
 * Applies one change of trust in the caller's transaction: the agent and its class row are created when
 * new, the class row is locked, the `TrustEvent` row is written first — a source already applied to this
 * agent and class changes nothing (null) — then `AgentTrust` takes the new state.
 */
export async function applyTrustChange(sql: Sql, change: TrustChange): Promise<AppliedTrustChange | null> {
  await sql.query(`INSERT INTO "Agent" ("id", "createdAt") VALUES ($1, ${UTC_NOW}) ON CONFLICT DO NOTHING`, [
    change.agentId,
  ]);
  await sql.query(
    `INSERT INTO "AgentTrust" ("agentId", "actionClass", "score", "successes", "failures", "updatedAt")
     VALUES ($1, $2, 0, 0, 0, ${UTC_NOW}) ON CONFLICT DO NOTHING`,
    [change.agentId, change.actionClass],
  );
  const locked = await sql.query(
    `SELECT "score", "successes", "failures", "cap" FROM "AgentTrust"
      WHERE "agentId" = $1 AND "actionClass" = $2 FOR UPDATE`,
    [change.agentId, change.actionClass],
  );
  const before = trustStateOf(locked.rows[0]);
  const after = applyTrustEvent(before, {
    kind: change.kind,
    ...(change.kind === 'cap' ? { cap: change.cap ?? null } : {}),
  });
  const inserted = await sql.query(
    `INSERT INTO "TrustEvent" ("id", "agentId", "actionClass", "kind", "sourceEvent", "scoreBefore", "scoreAfter",
                               "reason", "actor", "createdAt")
     VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, ${UTC_NOW})
     ON CONFLICT ("sourceEvent", "agentId", "actionClass") DO NOTHING`,
    [
      randomUUID(),
      change.agentId,
      change.actionClass,
      change.kind,
      change.sourceEvent,
      effectiveScore(before),
      effectiveScore(after),
      change.reason.slice(0, 2000),
      change.actor,
    ],
  );
  if (inserted.rowCount !== 1) return null;
  await sql.query(
    `UPDATE "AgentTrust" SET "score" = $3, "successes" = $4, "failures" = $5, "cap" = $6, "updatedAt" = ${UTC_NOW}
      WHERE "agentId" = $1 AND "actionClass" = $2`,
    [change.agentId, change.actionClass, after.score, after.successes, after.failures, after.cap],
  );
  return {
    agentId: change.agentId,
    actionClass: change.actionClass,
    kind: change.kind,
    before: effectiveScore(before),
    after: effectiveScore(after),
    state: after,
  };
}

/** Every class the agent has trust in (for reset of all classes). */
export async function trustClassesOf(sql: Sql, agentId: string): Promise<string[]> {
  const result = await sql.query(`SELECT "actionClass" FROM "AgentTrust" WHERE "agentId" = $1`, [agentId]);
  return result.rows.flatMap((row) => (typeof row['actionClass'] === 'string' ? [row['actionClass']] : []));
}
