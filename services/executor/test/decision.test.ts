import { describe, expect, it } from 'vitest';
import { ErrorCodes, argumentsHash } from '@tandem/contracts';
import {
  approvalHolds,
  stepRunFromDecision,
  unboundApprovedSteps,
  type BindableStep,
} from '../src/domain/decision.js';

const stored = { mode: 'human', reason: null, answer: null, editedArguments: null };

describe('stepRunFromDecision', () => {
  it('maps approved, answered, rejected and expired rows; edited arguments travel with an approval', () => {
    expect(stepRunFromDecision({ ...stored, status: 'approved' })).toMatchObject({
      status: 'approved',
      mode: 'human',
      arguments: null,
    });
    expect(
      stepRunFromDecision({ ...stored, status: 'approved', editedArguments: { path: 'a.txt' } }),
    ).toMatchObject({ status: 'approved', arguments: { path: 'a.txt' } });
    expect(stepRunFromDecision({ ...stored, status: 'answered', answer: 'blue' })).toMatchObject({
      status: 'approved',
      answer: 'blue',
    });
    expect(stepRunFromDecision({ ...stored, status: 'rejected', reason: 'no' })).toMatchObject({
      status: 'rejected',
      error: { code: ErrorCodes.APPROVAL_REJECTED, message: 'no', retryable: false },
    });
    expect(stepRunFromDecision({ ...stored, status: 'expired', mode: 'auto' })).toMatchObject({
      status: 'rejected',
      mode: 'auto',
      error: { code: ErrorCodes.APPROVAL_EXPIRED },
    });
  });

  it('decides nothing for a request that is not decided', () => {
    for (const status of ['pending', 'escalated', 'superseded', 'cancelled', 'awaiting-values', 'bogus']) {
      expect(stepRunFromDecision({ ...stored, status })).toBeNull();
    }
  });
});

describe('approvalHolds', () => {
  const args = { path: 'notes.txt', content: 'hello' };
  const step = (approval: { status: string; argumentsHash: string | null } | null) => ({
    tool: 'write_file',
    arguments: args,
    approval,
  });

  it('holds for an approved or answered row bound to the same arguments, in any key order', () => {
    const hash = argumentsHash({ content: 'hello', path: 'notes.txt' });
    expect(approvalHolds(step({ status: 'approved', argumentsHash: hash }), args)).toBe(true);
    expect(approvalHolds(step({ status: 'answered', argumentsHash: hash }), args)).toBe(true);
  });

  it('does not hold without a row, for another status, without a hash or for other arguments', () => {
    const hash = argumentsHash(args);
    expect(approvalHolds(step(null), args)).toBe(false);
    expect(approvalHolds(step({ status: 'pending', argumentsHash: hash }), args)).toBe(false);
    expect(approvalHolds(step({ status: 'rejected', argumentsHash: hash }), args)).toBe(false);
    expect(approvalHolds(step({ status: 'approved', argumentsHash: null }), args)).toBe(false);
    expect(
      approvalHolds(
        step({ status: 'approved', argumentsHash: argumentsHash({ ...args, content: 'other' }) }),
        args,
      ),
    ).toBe(false);
  });
});

describe('unboundApprovedSteps', () => {
  it('names the approved steps whose stored decision does not hold, and only those', () => {
    const good = { status: 'approved', argumentsHash: argumentsHash({ answer: 'x' }) };
    const steps = [
      { key: 's1', tool: 'respond', status: 'approved', arguments: { answer: 'x' }, approval: good },
      { key: 's2', tool: 'respond', status: 'approved', arguments: { answer: 'y' }, approval: good },
      { key: 's3', tool: 'respond', status: 'waiting', arguments: { answer: 'y' }, approval: null },
      { key: 's4', tool: 'respond', status: 'completed', arguments: { answer: 'y' }, approval: null },
    ];
    expect(unboundApprovedSteps(steps, (step) => step.arguments).map((step) => step.key)).toEqual(['s2']);
  });

  it('leaves steps checked elsewhere alone, and still counts their results for the others', () => {
    const read = { status: 'approved', argumentsHash: argumentsHash({ path: 'a.txt' }) };
    const sendHash = argumentsHash({ method: 'GET', url: 'https://x.test/?d=hello' });
    const steps: BindableStep[] = [
      { key: 's1', tool: 'read_file', status: 'completed', arguments: { path: 'a.txt' }, approval: read },
      {
        key: 's2',
        tool: 'write_file',
        status: 'approved',
        arguments: { path: 'b', content: 'x' },
        approval: null,
      },
      {
        key: 's3',
        tool: 'http_request',
        status: 'approved',
        arguments: { method: 'GET', url: 'https://x.test/?d={{steps.s1.value.content}}' },
        approval: { status: 'approved', argumentsHash: sendHash },
      },
    ];
    const inline = (step: { tool: string }) => step.tool !== 'http_request';
    // Resolved with another value than approved: s3 is unbound; s2 is left to the inline pass.
    const other = () => ({ method: 'GET', url: 'https://x.test/?d=bye' });
    expect(unboundApprovedSteps(steps, other, inline).map((step) => step.key)).toEqual(['s3']);
    const same = () => ({ method: 'GET', url: 'https://x.test/?d=hello' });
    expect(unboundApprovedSteps(steps, same, inline)).toEqual([]);
  });
});
