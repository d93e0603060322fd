import { describe, expect, it } from 'vitest';
import type { StepDecision } from '../src/domain/evaluate.js';
import { rejudge } from '../src/domain/rejudge.js';

function decision(outcome: StepDecision['outcome'], basis: string, group: string | null): StepDecision {
  return {
    outcome,
    risk: {
      level: basis === 'floor:critical' ? 'critical' : 'medium',
      reasons: [],
      externalSideEffect: false,
      secretTouching: false,
    },
    actionClass: 'write_file',
    basis,
    reason: basis,
    trustUsed: null,
    deadlineMs: 60_000,
    onExpiry: 'reject',
    group,
    reminderBeforeMs: 0,
  };
}

describe('rejudge', () => {
  const first = decision('needs-human', 'trust:unlisted medium', 'first-line');

  it('refuses a change the policy denies', () => {
    expect(rejudge(first, decision('rejected', 'rule:no-ssh', null)).kind).toBe('denied');
  });

  it('makes a new request when the change goes to another group', () => {
    const changed = decision('needs-human', 'rule:critical-to-security', 'security');
    expect(rejudge(first, changed)).toMatchObject({ kind: 'new-request', decision: { group: 'security' } });
  });

  it('makes a new request when the change reaches the floor and the first judgement did not', () => {
    const changed = decision('needs-human', 'floor:critical', 'first-line');
    expect(rejudge(first, changed).kind).toBe('new-request');
    expect(rejudge(decision('needs-human', 'floor:destructive', 'first-line'), changed).kind).toBe('stands');
  });

  it('makes a new request when a step first approved by policy now needs a human', () => {
    const auto = decision('auto-approved', 'trust:low', null);
    expect(rejudge(auto, decision('needs-human', 'risk:high', null)).kind).toBe('new-request');
    expect(rejudge(auto, decision('auto-approved', 'trust:low', null)).kind).toBe('stands');
  });

  it('lets the decision stand for a change within the same group and below the floor', () => {
    expect(rejudge(first, decision('needs-human', 'trust:below medium', 'first-line')).kind).toBe('stands');
    expect(rejudge(first, decision('auto-approved', 'trust:low', 'first-line')).kind).toBe('stands');
  });
});
