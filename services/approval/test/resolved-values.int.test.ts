import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepFinished, argumentsHash, createEnvelope } from '@tandem/contracts';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from './harness.js';
import { requestWhere, storeStepRun } from './helpers/rows.js';

/** Every low and medium step is approved by policy: only what the rules raise waits for a human. */
const POLICY = `
version: test-resolved-values-1
defaults: { deadline: 1h, onExpiry: reject, reminderBefore: 0 }
trust:
  low: { minScore: 0, minSuccesses: 0 }
  medium: { minScore: 0, minSuccesses: 0 }
`;

let harness: Harness;
let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'tandem-policy-'));
  const file = join(directory, 'policy.yaml');
  await writeFile(file, POLICY);
  harness = await createHarness({
    env: {
      TANDEM_APPROVAL_POLICY: file,
      TANDEM_AUTO_APPROVE: 'read,compute,write,network',
      TANDEM_HTTP_ALLOW_HOSTS: 'api.example.com',
    },
  });
});

afterAll(async () => {
  await harness?.close();
  await rm(directory, { recursive: true, force: true });
});

const COLLECT = 'https://api.example.com/collect?d={{steps.s1.value.content}}';

/** A plan that reads a file and sends what it read in a GET: the request is approvable only with values. */
async function planThatSendsAFile() {
  const task = await harness.seedTask();
  const plan = await harness.seedPlan(task, 1, [
    { tool: 'read_file', arguments: { path: 'notes/today.txt' }, riskClass: 'read' },
    { tool: 'http_request', arguments: { method: 'GET', url: COLLECT }, riskClass: 'network' },
    { tool: 'respond', arguments: { answer: 'sent {{steps.s2.value.status}}' }, riskClass: 'read' },
  ]);
  await harness.proposeAndWait(plan);
  const [read, send] = plan.steps;
  if (!read || !send) throw new Error('plan without steps');
  return { task, plan, read, send };
}

/** What the executor stores and publishes once the read step completed with `content`. */
async function completeRead(
  taskId: string,
  read: { stepId: string; key: string; tool: string },
  content: string,
): Promise<void> {
  const value = { path: 'notes/today.txt', content, encoding: 'utf8', size: content.length };
  await storeStepRun(harness.runtime.db, {
    stepId: read.stepId,
    taskId,
    status: 'completed',
    result: { value, stdout: '' },
  });
  const envelope = createEnvelope(
    StepFinished,
    { taskId, stepId: read.stepId, key: read.key, tool: read.tool, status: 'completed', value },
    { correlationId: taskId },
  );
  await harness.runtime.bus.publish(harness.runtime.bus.subject(StepFinished.subjectSuffix), envelope, {
    msgId: envelope.id,
  });
}

function requestOf(stepId: string) {
  return requestWhere(harness.runtime.db, { stepId });
}

describe('a step whose arguments reference earlier results is approved with the values (hole 6)', () => {
  it('decides nothing on the template; a secret in the values raises the step to critical for a human', async () => {
    const { task, read, send } = await planThatSendsAFile();
    expect((await requestOf(send.stepId)).status).toBe('awaiting-values');
    expect(harness.autoDecided.filter((entry) => entry.stepId === send.stepId)).toHaveLength(0);

    await completeRead(task.taskId, read, 'AKIAIOSFODNN7EXAMPLE');
    const pending = await waitFor(
      async () => {
        const row = await requestOf(send.stepId);
        return row.status === 'pending' ? row : undefined;
      },
      { description: 'the request judged again with its values', timeoutMs: 15_000 },
    );
    const resolved = { method: 'GET', url: 'https://api.example.com/collect?d=AKIAIOSFODNN7EXAMPLE' };
    expect(pending).toMatchObject({ riskLevel: 'critical', mode: 'human', resolvedArguments: resolved });
    expect(pending.argumentsHash).toBe(argumentsHash(resolved));
    const view = await harness.get(`/v1/approvals/${pending.id}`);
    expect(view.body).toMatchObject({ status: 'pending', resolvedArguments: resolved });
    expect(harness.decided.filter((entry) => entry.data.stepId === send.stepId)).toHaveLength(0);
  });

  it('approves the values by policy when they raise nothing, bound to the resolved arguments', async () => {
    const { task, read, send } = await planThatSendsAFile();
    expect((await requestOf(send.stepId)).status).toBe('awaiting-values');
    await completeRead(task.taskId, read, 'hello');
    const event = await waitFor(() => harness.decided.find((entry) => entry.data.stepId === send.stepId), {
      description: 'approval.decided for the resolved step',
      timeoutMs: 15_000,
    });
    expect(event.data).toMatchObject({ decision: 'approved', mode: 'auto' });
    const row = await requestOf(send.stepId);
    const resolved = { method: 'GET', url: 'https://api.example.com/collect?d=hello' };
    expect(row).toMatchObject({ status: 'approved', resolvedArguments: resolved });
    expect(row.argumentsHash).toBe(argumentsHash(resolved));
  });
});
