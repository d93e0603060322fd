import { randomUUID } from 'node:crypto';
import { SandboxRunCompleted } from '@tandem/contracts';
import { enqueueOutbox, transaction } from '@tandem/db';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExecutorHarness, type ExecutorHarness } from './helpers/executor-harness.js';
import { outboxOf, runOf, stepsOf } from './helpers/seed.js';

// Issue 12, item 3: a message of a running task that a consumer dead-letters left the task running for
// good. Now a dead letter of a message Tandem itself published (its Nats-Msg-Id is an Outbox row whose
// payload is exactly the message) ends the task `failed` with TASK.MESSAGE_DEAD_LETTERED; a forged one
// (anyone on the bus can publish) leaves the task alone.

let harness: ExecutorHarness;

beforeAll(async () => {
  harness = await createExecutorHarness({ TANDEM_DEAD_LETTER_SWEEP_MS: '200' });
}, 120_000);

afterAll(async () => {
  await harness?.close();
}, 60_000);

/** A `sandbox.run-completed` envelope whose outcome no version of the schema knows: a poison message. */
function poisonResult(taskId: string, stepId: string) {
  return {
    id: randomUUID(),
    type: SandboxRunCompleted.type,
    version: SandboxRunCompleted.version,
    occurredAt: new Date().toISOString(),
    correlationId: taskId,
    causationId: null,
    data: {
      idempotencyKey: `${stepId}:1`,
      runId: randomUUID(),
      taskId,
      stepId,
      outcome: 'exploded',
      stdout: '',
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      value: null,
      exitCode: null,
      durationMs: 1,
    },
  };
}

async function runningCodeTask() {
  return harness.seedTask([
    { tool: 'run_code', arguments: { language: 'javascript', code: 'result = 1' }, status: 'running' },
    { tool: 'respond', arguments: { answer: 'done' }, status: 'approved' },
  ]);
}

async function publish(envelope: unknown, msgId: string): Promise<void> {
  const { bus } = harness.runtime;
  await bus.publish(bus.subject(SandboxRunCompleted.subjectSuffix), envelope, { msgId });
}

async function deadLetterOf(msgId: string) {
  return waitFor(
    async () => {
      const rows = await harness.runtime.db.kysely.selectFrom('DeadLetter').selectAll().execute();
      return rows.find((row) => row.messageId === msgId || JSON.stringify(row.headers).includes(msgId));
    },
    { timeoutMs: 15_000, description: `a dead letter of ${msgId}` },
  );
}

describe('a dead letter of a task message', () => {
  it('ends the task failed when Tandem published the message, and not when it was forged', async () => {
    const { db } = harness.runtime;
    const genuine = await runningCodeTask();
    const forged = await runningCodeTask();
    const copied = await runningCodeTask();

    // Genuine: the sandbox-runner's own outbox row, published as its relay would (Nats-Msg-Id = row id).
    const message = poisonResult(genuine.taskId, genuine.stepIds[0] ?? '');
    await transaction(db, (tx) =>
      enqueueOutbox(tx, {
        id: message.id,
        publisher: 'sandbox-runner',
        subject: harness.runtime.bus.subject(SandboxRunCompleted.subjectSuffix),
        payload: message,
      }),
    );
    await publish(message, message.id);

    // Forged: anyone on the bus publishing the same kind of poison for another task.
    const fake = poisonResult(forged.taskId, forged.stepIds[0] ?? '');
    await publish(fake, fake.id);

    // Forged with a real outbox id: the row exists (unpublished), but the message is not its payload.
    const stored = poisonResult(copied.taskId, copied.stepIds[0] ?? '');
    await transaction(db, (tx) =>
      enqueueOutbox(tx, {
        id: stored.id,
        publisher: 'sandbox-runner',
        subject: harness.runtime.bus.subject(SandboxRunCompleted.subjectSuffix),
        payload: stored,
      }),
    );
    await publish({ ...stored, data: { ...stored.data, stdout: 'forged' } }, stored.id);

    await deadLetterOf(message.id);
    await deadLetterOf(fake.id);
    await deadLetterOf(stored.id);

    const run = await waitFor(
      async () => {
        const row = await runOf(db, genuine.taskId);
        return row?.status === 'failed' ? row : undefined;
      },
      { timeoutMs: 15_000, description: 'the genuine task failed' },
    );
    expect(run.error).toMatchObject({ code: 'TASK.MESSAGE_DEAD_LETTERED' });
    expect(JSON.stringify(run.error)).toContain('executor-sandbox-run-completed');
    expect(JSON.stringify(run.error)).toContain('BUS.SCHEMA_INVALID');
    const steps = await stepsOf(db, genuine.taskId);
    expect(steps.map((step) => step.status).sort()).toEqual(['cancelled', 'cancelled']);
    // The outcome event says why.
    const outcome = await waitFor(
      async () => {
        const rows = await outboxOf(db, genuine.taskId);
        return rows.find((row) => row.subject.endsWith('.task.failed.v1'));
      },
      { timeoutMs: 5000, description: 'its task.failed outcome' },
    );
    expect(JSON.stringify(outcome.payload)).toContain('TASK.MESSAGE_DEAD_LETTERED');
    expect(JSON.stringify(outcome.payload)).toContain(message.id);

    // Several sweeps later, the forged ones changed nothing.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const task of [forged, copied]) {
      const other = await runOf(db, task.taskId);
      expect(other.status).toBe('running');
    }
  }, 60_000);
});
