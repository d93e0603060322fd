import { describe, expect, it } from 'vitest';
import { judgeDeadLetter, sameJson, type DeadLetterFacts } from '../src/domain/dead-letters.js';

const payload = JSON.stringify({ id: 'm1', correlationId: 't1', data: { taskId: 't1', n: [1, { a: 2 }] } });

function letter(overrides: Partial<DeadLetterFacts> = {}): DeadLetterFacts {
  return {
    id: 'd1',
    taskId: 't1',
    consumer: 'X_executor-sandbox-run-completed',
    subject: 'x.sandbox.run-completed.v1',
    messageId: 'm1',
    natsMessageId: 'm1',
    code: 'BUS.SCHEMA_INVALID',
    reason: 'data.outcome: invalid',
    payload,
    deliveryCount: 1,
    outbox: { publisher: 'sandbox-runner', subject: 'x.sandbox.run-completed.v1', payload },
    ...overrides,
  };
}
const options = {
  isObserver: (consumer: string, subject: string) =>
    consumer.startsWith('X_learning-') || subject === 'x.step.finished.v1',
};

describe('judgeDeadLetter', () => {
  it('fails the task for a message that is exactly its outbox row, saying which and why', () => {
    const reordered = JSON.stringify({
      data: { n: [1, { a: 2 }], taskId: 't1' },
      correlationId: 't1',
      id: 'm1',
    });
    const verdict = judgeDeadLetter(letter({ payload: reordered }), options);
    expect(verdict.kind).toBe('fail_task');
    if (verdict.kind !== 'fail_task') return;
    expect(verdict.error.code).toBe('TASK.MESSAGE_DEAD_LETTERED');
    expect(verdict.error.message).toContain('X_executor-sandbox-run-completed');
    expect(verdict.error.details).toMatchObject({ code: 'BUS.SCHEMA_INVALID', messageId: 'm1' });
  });

  it('ignores a message with no outbox row, another body, another subject or unparseable bytes', () => {
    expect(judgeDeadLetter(letter({ outbox: null }), options)).toEqual({
      kind: 'ignore',
      outcome: 'not_tandem',
    });
    const changed = JSON.stringify({
      id: 'm1',
      correlationId: 't1',
      data: { taskId: 't1', n: [1, { a: 3 }] },
    });
    expect(judgeDeadLetter(letter({ payload: changed }), options).kind).toBe('ignore');
    expect(judgeDeadLetter(letter({ subject: 'x.plan.proposed.v1' }), options).kind).toBe('ignore');
    expect(judgeDeadLetter(letter({ payload: '{not json' }), options).kind).toBe('ignore');
  });

  it('ignores dead letters of observing consumers and of reports of what happened', () => {
    expect(judgeDeadLetter(letter({ consumer: 'X_learning-task-failed' }), options)).toEqual({
      kind: 'ignore',
      outcome: 'observer',
    });
    const report = 'x.step.finished.v1';
    expect(
      judgeDeadLetter(
        letter({
          consumer: 'X_approval-step-finished',
          subject: report,
          outbox: { publisher: 'executor', subject: report, payload },
        }),
        options,
      ).kind,
    ).toBe('ignore');
  });
});

describe('sameJson', () => {
  it('compares values, not key order', () => {
    expect(sameJson({ a: 1, b: [null, 'x'] }, { b: [null, 'x'], a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson({}, [])).toBe(false);
  });
});
