import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { consumerNameFor, streamNameFor } from '@tandem/contracts';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningConsumer } from '../src/index.js';
import { StepFinished } from '@tandem/contracts';
import { createHarness, sleep, stepFinished, type Harness } from './harness.js';

// Short ack waits are safe only if a handler that is still working says so: the consumer framework
// heartbeats (`working()`) while a handler runs, and a dead process holds no more than it handles.

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

const ACK_WAIT_MS = 2_000;
const FIXTURE = fileURLToPath(new URL('./fixtures/hold-and-hang.ts', import.meta.url));

async function publishSteps(suffix: string, count: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    const envelope = stepFinished({ key: `step-${index}` });
    await harness.bus.publish(harness.bus.subject(suffix), envelope, { msgId: envelope.id });
  }
}

describe('ack waits, heartbeats and pre-fetch', () => {
  it('does not redeliver a message whose handler runs longer than the ack wait', async () => {
    const suffix = 'step.long-handler.v1';
    const deliveries: number[] = [];
    let running: RunningConsumer | undefined;
    try {
      running = await harness.bus.consume({
        durable: 'long-handler',
        subject: suffix,
        schema: StepFinished.envelope,
        messageId: (message) => message.id,
        concurrency: 1,
        ackWaitMs: ACK_WAIT_MS,
        // The handler never calls working() itself: the framework must.
        handle: async (_message, context) => {
          deliveries.push(context.deliveryCount);
          await sleep(ACK_WAIT_MS * 2.5);
        },
      });
      await publishSteps(suffix, 1);
      await waitFor(() => deliveries.length >= 1, { timeoutMs: 10_000, description: 'the first delivery' });
      await sleep(ACK_WAIT_MS * 3.5);
    } finally {
      await running?.stop();
    }
    expect(deliveries).toEqual([1]);
  }, 30_000);

  it('hands every message of a SIGKILLed consumer to another instance within the ack wait', async () => {
    const durable = 'killed-holder';
    const suffix = 'step.killed-holder.v1';
    const total = 20;
    await publishSteps(suffix, total);
    let child: ChildProcess | undefined;
    let second: RunningConsumer | undefined;
    try {
      child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          FIXTURE,
          harness.natsUrl,
          harness.prefix,
          harness.database.url,
          durable,
          suffix,
          String(ACK_WAIT_MS),
        ],
        { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await waitFor(() => output.includes('started '), {
        timeoutMs: 15_000,
        description: 'the fixture handling a message',
      });
      // Let the client pull whatever it pulls ahead of the handler.
      await sleep(500);
      const info = await harness.bus.jsm.consumers.info(
        streamNameFor(harness.prefix, 'step'),
        consumerNameFor(harness.prefix, durable),
      );
      // Pre-fetch no larger than concurrency (1): the process holds only the message it works on.
      const held = info.num_ack_pending;
      child.kill('SIGKILL');
      const killedAt = Date.now();

      const handled = new Set<number>();
      second = await harness.bus.consume({
        durable,
        subject: suffix,
        schema: StepFinished.envelope,
        messageId: (message) => message.id,
        concurrency: 1,
        ackWaitMs: ACK_WAIT_MS,
        handle: async (_message, context) => {
          handled.add(context.streamSeq);
        },
      });
      await waitFor(() => handled.size >= total, {
        timeoutMs: ACK_WAIT_MS + 10_000,
        description: 'every message handled',
      });
      const recoveredMs = Date.now() - killedAt;
      process.stdout.write(
        `killed consumer held ${held} message(s); all ${total} handled ${recoveredMs} ms after the kill (ack wait ${ACK_WAIT_MS} ms)\n`,
      );
      expect(handled.size).toBe(total);
      expect(held).toBeLessThanOrEqual(1);
    } finally {
      child?.kill('SIGKILL');
      await second?.stop();
    }
  }, 40_000);
});
