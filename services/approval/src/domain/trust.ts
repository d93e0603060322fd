/*
 * Earned trust of one agent in one action class (see action-class.ts): a score in [-1, 1], earned
 * slowly and lost fast, so one bad call costs more than many good ones earn.
 *
 * | event      | effect on score                         | why                                                      |
 * |------------|-----------------------------------------|----------------------------------------------------------|
 * | success    | + 0.10 * (1 - score)                    | a run verified as fine; gains shrink as the score nears 1 |
 * | approval   | + 0.15 * (1 - score)                    | a human approved the step as planned (no edits)          |
 * | edit       | min(score, 0) - 0.25                    | a human had to correct the arguments                     |
 * | rejection  | min(score, 0) - 0.50                    | a human refused the step: all earned trust is gone        |
 * | revert     | min(score, 0) - 0.50                    | an approved step had to be undone: as bad as a rejection |
 * | limit      | score - 0.30                            | the sandbox stopped the run (time, memory, output)        |
 * | failure    | score - 0.15                            | the step failed                                          |
 * | reset      | back to NEW_TRUST, the cap is kept      | an admin starts the class over                           |
 * | cap        | cap := event.cap (null removes it)      | an admin limits the usable score; the score stays        |
 *
 * With scores starting at 0, seven successes reach 0.52; one rejection takes any score below zero (four
 * verified successes bring it back to 0, eleven to 0.5), so a
 * class with a recent rejection never passes a trust threshold (thresholds are >= 0, see policy.ts)
 * until it has earned its way back.
 */

/** What happened that changes an agent's trust in an action class. */
export type TrustEventKind =
  'success' | 'approval' | 'rejection' | 'edit' | 'failure' | 'limit' | 'revert' | 'reset' | 'cap';

/** Every trust event kind, in the order of the table above. */
export const TRUST_EVENT_KINDS: readonly TrustEventKind[] = [
  'success',
  'approval',
  'rejection',
  'edit',
  'failure',
  'limit',
  'revert',
  'reset',
  'cap',
];

/** An agent's trust in one action class. */
export interface TrustState {
  /** In [-1, 1]. */
  score: number;
  /** Verified successful runs. */
  successes: number;
  /** Runs that failed, hit a sandbox limit, or were reverted. */
  failures: number;
  /** The highest score that counts (see {@link effectiveScore}); null: no cap. */
  cap: number | null;
}

/** Fraction of the remaining distance to 1 that a verified success earns. */
export const SUCCESS_GAIN = 0.1;
/** Fraction of the remaining distance to 1 that a human approval without edits earns. */
export const APPROVAL_GAIN = 0.15;
/** What a rejection or a revert costs, after any positive score is dropped. */
export const REJECTION_PENALTY = 0.5;
/** What a human edit costs, after any positive score is dropped. */
export const EDIT_PENALTY = 0.25;
/** What hitting a sandbox limit costs. */
export const LIMIT_PENALTY = 0.3;
/** What a failed step costs. */
export const FAILURE_PENALTY = 0.15;

/** The trust of an agent with no history in a class. */
export const NEW_TRUST: TrustState = Object.freeze({ score: 0, successes: 0, failures: 0, cap: null });

function clamp(value: number): number {
  if (Number.isNaN(value)) return -1;
  return Math.min(1, Math.max(-1, value));
}

/** The state after one event (pure; the input is not changed). */
export function applyTrustEvent(
  state: TrustState,
  event: { kind: TrustEventKind; cap?: number | null },
): TrustState {
  const score = clamp(state.score);
  switch (event.kind) {
    case 'success':
      return { ...state, score: clamp(score + SUCCESS_GAIN * (1 - score)), successes: state.successes + 1 };
    case 'approval':
      return { ...state, score: clamp(score + APPROVAL_GAIN * (1 - score)) };
    case 'rejection':
      return { ...state, score: clamp(Math.min(score, 0) - REJECTION_PENALTY) };
    case 'revert':
      return {
        ...state,
        score: clamp(Math.min(score, 0) - REJECTION_PENALTY),
        failures: state.failures + 1,
      };
    case 'edit':
      return { ...state, score: clamp(Math.min(score, 0) - EDIT_PENALTY) };
    case 'limit':
      return { ...state, score: clamp(score - LIMIT_PENALTY), failures: state.failures + 1 };
    case 'failure':
      return { ...state, score: clamp(score - FAILURE_PENALTY), failures: state.failures + 1 };
    case 'reset':
      return { ...NEW_TRUST, cap: state.cap };
    case 'cap':
      return { ...state, cap: event.cap === undefined || event.cap === null ? null : clamp(event.cap) };
  }
}

/** Folds a history of events, oldest first, starting from `from` (default {@link NEW_TRUST}). */
export function foldTrustEvents(events: readonly TrustEventKind[], from: TrustState = NEW_TRUST): TrustState {
  return events.reduce((state, kind) => applyTrustEvent(state, { kind }), from);
}

/** The score a policy compares: the score, at most the cap. */
export function effectiveScore(state: TrustState): number {
  const score = clamp(state.score);
  return state.cap === null ? score : Math.min(score, clamp(state.cap));
}
