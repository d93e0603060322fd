import { describe, expect, it } from 'vitest';
import {
  NEW_TRUST,
  applyTrustEvent,
  effectiveScore,
  foldTrustEvents,
  type TrustEventKind,
  type TrustState,
} from '../src/domain/trust.js';

function successes(count: number): TrustEventKind[] {
  return Array.from({ length: count }, () => 'success');
}

describe('trust', () => {
  it('starts at zero with no cap', () => {
    expect(NEW_TRUST).toEqual({ score: 0, successes: 0, failures: 0, cap: null });
    expect(effectiveScore(NEW_TRUST)).toBe(0);
  });

  it('earns slowly: a success closes a tenth of the gap to 1 and counts', () => {
    const once = applyTrustEvent(NEW_TRUST, { kind: 'success' });
    expect(once.score).toBeCloseTo(0.1);
    expect(once.successes).toBe(1);
    expect(applyTrustEvent(once, { kind: 'success' }).score).toBeCloseTo(0.19);
  });

  it('needs seven successes to pass 0.5', () => {
    expect(foldTrustEvents(successes(6)).score).toBeLessThan(0.5);
    expect(foldTrustEvents(successes(7)).score).toBeGreaterThanOrEqual(0.5);
  });

  it('an approval without edits earns 0.15 of the gap but is not a verified success', () => {
    const approved = applyTrustEvent(NEW_TRUST, { kind: 'approval' });
    expect(approved.score).toBeCloseTo(0.15);
    expect(approved.successes).toBe(0);
  });

  it('loses fast: a rejection drops any earned score below zero', () => {
    const veteran = foldTrustEvents(successes(40));
    expect(veteran.score).toBeGreaterThan(0.98);
    const rejected = applyTrustEvent(veteran, { kind: 'rejection' });
    expect(rejected.score).toBeCloseTo(-0.5);
    expect(rejected.successes).toBe(40);
  });

  it('a revert costs as much as a rejection and counts as a failure', () => {
    const reverted = applyTrustEvent(foldTrustEvents(successes(10)), { kind: 'revert' });
    expect(reverted.score).toBeCloseTo(-0.5);
    expect(reverted.failures).toBe(1);
  });

  it('an edit drops the score to -0.25', () => {
    expect(applyTrustEvent(foldTrustEvents(successes(10)), { kind: 'edit' }).score).toBeCloseTo(-0.25);
  });

  it('a sandbox limit costs 0.3 and a failure 0.15, both counted', () => {
    const start: TrustState = { score: 0.6, successes: 9, failures: 0, cap: null };
    const limited = applyTrustEvent(start, { kind: 'limit' });
    expect(limited.score).toBeCloseTo(0.3);
    expect(limited.failures).toBe(1);
    const failed = applyTrustEvent(start, { kind: 'failure' });
    expect(failed.score).toBeCloseTo(0.45);
    expect(failed.failures).toBe(1);
  });

  it('never leaves [-1, 1]', () => {
    const sunk = foldTrustEvents(['rejection', 'rejection', 'rejection', 'limit', 'failure']);
    expect(sunk.score).toBe(-1);
    const high = foldTrustEvents([...successes(500), ...Array<TrustEventKind>(500).fill('approval')]);
    expect(high.score).toBeLessThanOrEqual(1);
    expect(
      applyTrustEvent({ score: 5, successes: 0, failures: 0, cap: null }, { kind: 'success' }).score,
    ).toBe(1);
  });

  it('recovers from a rejection only slowly: 4 successes to get back to 0, 11 to reach 0.5', () => {
    const afterRejection = foldTrustEvents([...successes(10), 'rejection']);
    expect(foldTrustEvents(successes(3), afterRejection).score).toBeLessThan(0);
    expect(foldTrustEvents(successes(4), afterRejection).score).toBeGreaterThanOrEqual(0);
    expect(foldTrustEvents(successes(10), afterRejection).score).toBeLessThan(0.5);
    expect(foldTrustEvents(successes(11), afterRejection).score).toBeGreaterThanOrEqual(0.5);
  });

  it('reset starts over but keeps the cap', () => {
    const capped = foldTrustEvents(successes(10), { ...NEW_TRUST, cap: 0.3 });
    expect(applyTrustEvent(capped, { kind: 'reset' })).toEqual({ ...NEW_TRUST, cap: 0.3 });
  });

  it('cap limits the effective score while the score stays', () => {
    const veteran = foldTrustEvents(successes(20));
    const capped = applyTrustEvent(veteran, { kind: 'cap', cap: 0.2 });
    expect(capped.score).toBe(veteran.score);
    expect(effectiveScore(capped)).toBe(0.2);
    const uncapped = applyTrustEvent(capped, { kind: 'cap', cap: null });
    expect(effectiveScore(uncapped)).toBe(veteran.score);
  });

  it('a cap above the score changes nothing', () => {
    const state: TrustState = { score: 0.4, successes: 5, failures: 0, cap: 0.9 };
    expect(effectiveScore(state)).toBe(0.4);
  });

  it('does not change the state it is given', () => {
    const state: TrustState = { score: 0.4, successes: 5, failures: 0, cap: null };
    applyTrustEvent(state, { kind: 'rejection' });
    expect(state).toEqual({ score: 0.4, successes: 5, failures: 0, cap: null });
  });
});
