import { parseDuration, type Policy } from './policy.js';

/*
 * What the deadline sweep does with a pending request past its deadline: escalate it once to the
 * policy's escalation group with a new deadline, when its policy says so, otherwise expire it
 * (rejected with APPROVAL.EXPIRED). And how long before a deadline the reminder goes out.
 */

/** What happens to one request past its deadline. */
export type DeadlineAction =
  { kind: 'escalate'; group: string; deadlineMs: number } | { kind: 'expire'; reason: string };

/** Decides what a due request comes to (escalated once at most, and only when the policy has a group). */
export function deadlineAction(
  request: { onExpiry: string | null; escalationLevel: number; deadline: Date | null },
  policy: Pick<Policy, 'escalation'>,
): DeadlineAction {
  const escalation = policy.escalation;
  if (request.onExpiry === 'escalate' && request.escalationLevel === 0 && escalation) {
    return { kind: 'escalate', group: escalation.group, deadlineMs: parseDuration(escalation.deadline) };
  }
  return {
    kind: 'expire',
    reason: `no decision before the deadline (${request.deadline?.toISOString() ?? 'unknown'})`,
  };
}

/** How long before a deadline the reminder goes out; 0: no reminders. */
export function reminderLeadMs(policy: Pick<Policy, 'defaults'>): number {
  return parseDuration(policy.defaults.reminderBefore ?? 0);
}

/** Seconds a request waited, from its creation to `now` (never negative), for the wait metric. */
export function waitedSeconds(createdAt: Date, now: Date): number {
  return Math.max(0, (now.getTime() - createdAt.getTime()) / 1000);
}

/** The audit reason of an escalation. */
export function escalationReason(fromGroup: string | null, toGroup: string): string {
  return `no decision by ${fromGroup ?? 'the approvers'} before the deadline; escalated to ${toGroup}`;
}
