import { describe, expect, it } from 'vitest';
import { deadlineAction, escalationReason, reminderLeadMs, waitedSeconds } from '../src/domain/deadlines.js';

// What the deadline sweep does with a due request (domain/deadlines.ts), without NATS or Postgres.

const ESCALATING = { escalation: { group: 'managers', deadline: 30 * 60_000 } };
const DEADLINE = new Date('2026-12-07T12:00:00.000Z');

describe('deadlineAction', () => {
  it('escalates once, to the policy group with its deadline, when the request says escalate', () => {
    expect(
      deadlineAction({ onExpiry: 'escalate', escalationLevel: 0, deadline: DEADLINE }, ESCALATING),
    ).toEqual({
      kind: 'escalate',
      group: 'managers',
      deadlineMs: 30 * 60_000,
    });
  });

  it('expires a request after its escalation, one that says reject, or when the policy has no group', () => {
    const expired = { kind: 'expire', reason: `no decision before the deadline (${DEADLINE.toISOString()})` };
    expect(
      deadlineAction({ onExpiry: 'escalate', escalationLevel: 1, deadline: DEADLINE }, ESCALATING),
    ).toEqual(expired);
    expect(
      deadlineAction({ onExpiry: 'reject', escalationLevel: 0, deadline: DEADLINE }, ESCALATING),
    ).toEqual(expired);
    expect(deadlineAction({ onExpiry: 'escalate', escalationLevel: 0, deadline: DEADLINE }, {})).toEqual(
      expired,
    );
    expect(deadlineAction({ onExpiry: null, escalationLevel: 0, deadline: null }, {})).toMatchObject({
      kind: 'expire',
      reason: 'no decision before the deadline (unknown)',
    });
  });
});

describe('reminders and waits', () => {
  it('reminds the policy lead before the deadline; 0 means none', () => {
    expect(
      reminderLeadMs({
        defaults: { deadline: 3_600_000, onExpiry: 'reject' as const, reminderBefore: 600_000 },
      }),
    ).toBe(600_000);
    expect(
      reminderLeadMs({ defaults: { deadline: 3_600_000, onExpiry: 'reject' as const, reminderBefore: 0 } }),
    ).toBe(0);
  });

  it('measures the wait from creation, never negative', () => {
    expect(waitedSeconds(new Date(0), new Date(1500))).toBe(1.5);
    expect(waitedSeconds(new Date(2000), new Date(1000))).toBe(0);
  });

  it('says who did not decide and where it went', () => {
    expect(escalationReason('first-line', 'managers')).toBe(
      'no decision by first-line before the deadline; escalated to managers',
    );
    expect(escalationReason(null, 'managers')).toMatch(/^no decision by the approvers/);
  });
});
