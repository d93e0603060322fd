import { describe, expect, it } from 'vitest';
import { planStanding } from '../src/domain/plan-versions.js';

const V1 = { planId: 'plan-1', version: 1 };
const V2 = { planId: 'plan-2', version: 2 };
const V3 = { planId: 'plan-3', version: 3 };

describe('planStanding', () => {
  it('a first plan supersedes nothing', () => {
    expect(planStanding(V1, [])).toEqual({ stale: false, supersede: [] });
  });

  it('a newer version supersedes the version it names', () => {
    expect(planStanding({ ...V2, supersedes: V1.planId }, [V1])).toEqual({
      stale: false,
      supersede: ['plan-1'],
    });
  });

  it('a newer version supersedes every older version, named or not', () => {
    expect(planStanding({ ...V3, supersedes: V2.planId }, [V1])).toEqual({
      stale: false,
      supersede: ['plan-1'],
    });
  });

  it('an older version arriving after a newer one is stale', () => {
    expect(planStanding(V1, [V2])).toEqual({ stale: true, newerVersion: 2 });
    expect(planStanding(V2, [V1, V3])).toEqual({ stale: true, newerVersion: 3 });
  });

  it('a redelivered plan is not stale against its own requests', () => {
    expect(planStanding(V2, [V1, V2])).toEqual({ stale: false, supersede: ['plan-1'] });
  });

  it('supersedes a named plan whose version is unknown, and ignores other unknown ones', () => {
    expect(
      planStanding({ ...V2, supersedes: 'plan-x' }, [
        { planId: 'plan-x', version: null },
        { planId: 'plan-y', version: null },
      ]),
    ).toEqual({ stale: false, supersede: ['plan-x'] });
  });
});
