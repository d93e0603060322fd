import {
  agentTrustIn,
  insertTrustEvent,
  lockAgentTrust,
  updateAgentTrust,
  type DbOrTx,
  type StoredTrust,
  type Tx,
} from '@tandem/db';
import { applyTrustEvent, effectiveScore, type TrustEventKind, type TrustState } from './domain/trust.js';

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

/** A trust state from a stored `AgentTrust` row. */
export function trustStateOf(row: StoredTrust): TrustState {
  return { score: row.score, successes: row.successes, failures: row.failures, cap: row.cap };
}

/** The agent's trust per action class (classes without a row are absent). */
export async function loadTrust(
  source: DbOrTx,
  agentId: string,
  classes: readonly string[],
): Promise<Map<string, TrustState>> {
  const rows = await agentTrustIn(source, agentId, classes);
  return new Map(rows.map((row) => [row.actionClass, trustStateOf(row)]));
}

/**
 * Applies one change of trust in the caller's transaction: the agent and its class row are created when
 * new, the class row is locked, the `TrustEvent` row is written first — a source already applied to this
 * agent and class changes nothing (null) — then `AgentTrust` takes the new state.
 */
export async function applyTrustChange(tx: Tx, change: TrustChange): Promise<AppliedTrustChange | null> {
  const before = trustStateOf(await lockAgentTrust(tx, change.agentId, change.actionClass));
  const after = applyTrustEvent(before, {
    kind: change.kind,
    ...(change.kind === 'cap' ? { cap: change.cap ?? null } : {}),
  });
  const recorded = await insertTrustEvent(tx, {
    agentId: change.agentId,
    actionClass: change.actionClass,
    kind: change.kind,
    sourceEvent: change.sourceEvent,
    scoreBefore: effectiveScore(before),
    scoreAfter: effectiveScore(after),
    reason: change.reason.slice(0, 2000),
    actor: change.actor,
  });
  if (!recorded) return null;
  await updateAgentTrust(tx, change.agentId, change.actionClass, after);
  return {
    agentId: change.agentId,
    actionClass: change.actionClass,
    kind: change.kind,
    before: effectiveScore(before),
    after: effectiveScore(after),
    state: after,
  };
}
