import { describe, expect, it } from 'vitest';
import type { StepState } from '../src/domain/progress.js';
import { staleStepAction, stuckReason } from '../src/domain/stale-work.js';

const leases = { leaseMs: 1000, leaseRetries: 2, sandboxTimeoutMs: 500, httpTimeoutMs: 300 };

function step(overrides: Partial<StepState>): StepState {
  return {
    stepId: 'id-1',
    key: 's1',
    index: 0,
    tool: 'respond',
    arguments: {},
    status: 'approved',
    result: null,
    error: null,
    approval: { status: 'approved', argumentsHash: null },
    ...overrides,
  };
}

describe('staleStepAction', () => {
  it('takes over a generating claim past the lease, never before', () => {
    expect(
      staleStepAction({ status: 'generating', tool: 'run_code', ageMs: 999, requests: 1 }, leases).kind,
    ).toBe('none');
    expect(
      staleStepAction({ status: 'generating', tool: 'run_code', ageMs: 1001, requests: 1 }, leases).kind,
    ).toBe('take_over');
  });

  it('re-requests a lost sandbox job after lease + job limit, up to the retries, then fails typed', () => {
    const run = { status: 'running', tool: 'run_code' };
    expect(staleStepAction({ ...run, ageMs: 1500, requests: 1 }, leases).kind).toBe('none');
    expect(staleStepAction({ ...run, ageMs: 1501, requests: 1 }, leases).kind).toBe('resend');
    expect(staleStepAction({ ...run, ageMs: 1501, requests: 2 }, leases).kind).toBe('resend');
    expect(staleStepAction({ ...run, ageMs: 1501, requests: 3 }, leases)).toMatchObject({
      kind: 'fail',
      error: { code: 'STEP.LEASE_EXPIRED' },
    });
  });

  it('leaves an unanswered job alone while the sandbox keeps answering others (it is queued)', () => {
    expect(
      staleStepAction({ status: 'running', tool: 'run_code', ageMs: 60_000, requests: 3 }, leases, true).kind,
    ).toBe('none');
  });

  it('fails an interrupted http_request without resending it, and any other running tool on the lease', () => {
    expect(
      staleStepAction({ status: 'running', tool: 'http_request', ageMs: 1300, requests: 1 }, leases).kind,
    ).toBe('none');
    expect(
      staleStepAction({ status: 'running', tool: 'http_request', ageMs: 1301, requests: 1 }, leases),
    ).toMatchObject({
      kind: 'fail',
      error: { code: 'HTTP.REQUEST_FAILED' },
    });
    expect(
      staleStepAction({ status: 'running', tool: 'write_file', ageMs: 1001, requests: 1 }, leases),
    ).toMatchObject({
      kind: 'fail',
      error: { code: 'STEP.LEASE_EXPIRED' },
    });
  });
});

describe('stuckReason', () => {
  const active = { status: 'active' };
  const none = new Map<string, string[]>();

  it('is null while a step is out or a decision is still to come', () => {
    expect(stuckReason({ plan: active, steps: [step({ status: 'running' })], dependsOn: none })).toBeNull();
    expect(
      stuckReason({
        plan: active,
        steps: [step({ status: 'waiting', approval: { status: 'pending', argumentsHash: null } })],
        dependsOn: none,
      }),
    ).toBeNull();
    expect(
      stuckReason({ plan: active, steps: [step({ status: 'waiting', approval: null })], dependsOn: none }),
    ).toBeNull();
  });

  it('names why a task cannot move: a lost decision, an ended step, an inactive plan, no plan', () => {
    expect(stuckReason({ plan: active, steps: [step({ status: 'waiting' })], dependsOn: none })).toContain(
      'await',
    );
    expect(stuckReason({ plan: active, steps: [step({ status: 'cancelled' })], dependsOn: none })).toContain(
      's1 is cancelled',
    );
    expect(stuckReason({ plan: { status: 'superseded' }, steps: [], dependsOn: none })).toContain(
      'superseded',
    );
    expect(stuckReason(null)).toBe('the run has no plan');
  });
});
