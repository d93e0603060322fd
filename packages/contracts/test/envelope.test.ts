import { describe, expect, it } from 'vitest';
import { PlanFailed, createEnvelope, streamNameFor, subjectFor, consumerNameFor } from '../src/index.js';

describe('envelopes and subjects', () => {
  it('builds a parseable envelope whose subject carries the version', () => {
    const taskId = '4b6f3d5e-2a43-4a57-9a59-1d8fd0f4a0a1';
    const envelope = createEnvelope(
      PlanFailed,
      {
        taskId,
        request: { idempotencyKey: 'k' },
        kind: 'general',
        agentId: null,
        error: { code: 'PLAN.EMPTY', message: 'no steps', retryable: false },
      },
      { correlationId: taskId },
    );
    expect(PlanFailed.envelope.parse(envelope)).toEqual(envelope);
    expect(subjectFor('tandem', PlanFailed.subjectSuffix)).toBe('tandem.plan.failed.v1');
  });

  it('refuses to build an envelope around invalid data', () => {
    expect(() =>
      // @ts-expect-error: the data is deliberately wrong
      createEnvelope(PlanFailed, { taskId: 'not-a-uuid' }, { correlationId: 'x' }),
    ).toThrow();
  });

  it('derives stream and consumer names from the prefix and rejects wildcard prefixes', () => {
    expect(streamNameFor('tandem', 'task')).toBe('TANDEM_TASK');
    expect(streamNameFor('t_ab-1', 'plan')).toBe('T_AB_1_PLAN');
    expect(consumerNameFor('acme.prod', 'planner-intake')).toBe('ACME_PROD_planner-intake');
    expect(() => subjectFor('tandem.*', 'x')).toThrow();
    expect(() => subjectFor('', 'x')).toThrow();
  });
});
