import type { StepDecision } from './evaluate.js';

/*
 * A step changed after it was first judged — an approver's edit, or a step's references resolved to
 * values — is judged again exactly like a model's step. What follows from that second look:
 *   - the policy denies it                                      -> refused (an edit: 422; values: rejected)
 *   - it needs a human of ANOTHER group than the step as first
 *     judged, or it reaches the floor (destructive, critical,
 *     external) where the first judgement did not              -> a new request for that group: never a run
 *   - otherwise                                                 -> the decision at hand stands
 */

/** What a second judgement of a changed step makes of the decision at hand. */
export type Rejudged =
  | { kind: 'stands' }
  | { kind: 'denied'; decision: StepDecision }
  | { kind: 'new-request'; decision: StepDecision; why: string };

function atFloor(decision: StepDecision): boolean {
  return decision.outcome === 'needs-human' && decision.basis.startsWith('floor:');
}

/** Compares the changed step's decision with the first one's (both judged now, in the same context). */
export function rejudge(first: StepDecision, changed: StepDecision): Rejudged {
  if (changed.outcome === 'rejected') return { kind: 'denied', decision: changed };
  if (changed.outcome !== 'needs-human') return { kind: 'stands' };
  if (first.outcome === 'needs-human' && changed.group !== first.group) {
    return {
      kind: 'new-request',
      decision: changed,
      why: `it now goes to group ${changed.group ?? '(none)'}, not ${first.group ?? '(none)'} (${changed.basis})`,
    };
  }
  if (first.outcome !== 'needs-human' || (atFloor(changed) && !atFloor(first))) {
    return {
      kind: 'new-request',
      decision: changed,
      why: `it now needs a human decision (${changed.basis}: ${changed.risk.level} risk)`,
    };
  }
  return { kind: 'stands' };
}
