import { randomUUID } from 'node:crypto';
import { SandboxRunCompleted, createEnvelope } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { unpublishableRunResult } from '../src/app.js';

function runCompleted() {
  const taskId = randomUUID();
  return createEnvelope(
    SandboxRunCompleted,
    {
      idempotencyKey: 'key-1',
      runId: randomUUID(),
      taskId,
      stepId: randomUUID(),
      outcome: 'ok',
      stdout: 'x'.repeat(1_049_000),
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      value: 42,
      exitCode: 0,
      durationMs: 12,
      files: [{ path: 'out.txt', size: 3, deleted: false }],
    },
    { correlationId: taskId, causationId: randomUUID() },
  );
}

describe('unpublishableRunResult', () => {
  it('replaces an unpublishable sandbox.run-completed with the same run failed, without output, and the reason', () => {
    const original = runCompleted();
    const [replacement, ...more] = unpublishableRunResult('tandem', {
      id: original.id,
      publisher: 'sandbox-runner',
      subject: 'tandem.sandbox.run-completed.v1',
      payload: JSON.parse(JSON.stringify(original)),
      headers: {},
      error: { code: 'BUS.PAYLOAD_TOO_LARGE', message: 'over max_payload' },
    });
    expect(more).toEqual([]);
    expect(replacement?.subject).toBe('tandem.sandbox.run-completed.v1');
    expect(replacement?.id).not.toBe(original.id);
    const parsed = SandboxRunCompleted.envelope.parse(replacement?.payload);
    expect(parsed.correlationId).toBe(original.correlationId);
    expect(parsed.data).toMatchObject({
      idempotencyKey: 'key-1',
      runId: original.data.runId,
      stepId: original.data.stepId,
      outcome: 'output_limit',
      stdout: '',
      stdoutTruncated: true,
      value: null,
      files: [],
      filesTruncated: true,
    });
    expect(parsed.data.errorMessage).toMatch(/^BUS\.OUTBOX_UNPUBLISHABLE: .*BUS\.PAYLOAD_TOO_LARGE/);
    expect(JSON.stringify(replacement?.payload).length).toBeLessThan(2_000);
  });

  it('gives no replacement for other subjects or payloads that are not a run result', () => {
    const row = {
      id: randomUUID(),
      publisher: 'sandbox-runner',
      subject: 'tandem.sandbox.other.v1',
      payload: {},
      headers: {},
      error: { code: 'BUS.PUBLISH_REFUSED', message: 'refused' },
    };
    expect(unpublishableRunResult('tandem', row)).toEqual([]);
    expect(unpublishableRunResult('tandem', { ...row, subject: 'tandem.sandbox.run-completed.v1' })).toEqual(
      [],
    );
  });
});
