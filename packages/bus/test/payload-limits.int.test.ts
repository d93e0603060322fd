import { ErrorCodes, StepFinished, consumerNameFor, streamNameFor } from '@tandem/contracts';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createHarness,
  deadLettersOf as storedDeadLetters,
  sleep,
  stepFinished,
  type Harness,
  type StoredDeadLetter,
} from './harness.js';

// Hole 7 of issue 11 on NATS: a 10,000-deep payload overflowed the stack in the consumer's schema
// parse, which escaped the framework's handling; the message was redelivered until nats-server gave up
// and was dead-lettered as BUS.MAX_DELIVERIES with a misleading "the handler hung" reason.

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

async function deadLettersOf(durable: string): Promise<StoredDeadLetter[]> {
  return storedDeadLetters(harness.db, consumerNameFor(harness.prefix, durable));
}

async function consumerState(durable: string): Promise<{ ackPending: number; redelivered: number }> {
  const info = await harness.bus.jsm.consumers.info(
    streamNameFor(harness.prefix, 'step'),
    consumerNameFor(harness.prefix, durable),
  );
  return { ackPending: info.num_ack_pending, redelivered: info.num_redelivered };
}

/** A `step.finished` envelope as text whose `data.value` is `depth` nested arrays. */
function deepStepFinished(depth: number): string {
  const envelope = stepFinished({ key: 'deep' });
  const text = JSON.stringify({ ...envelope, data: { ...envelope.data, value: 'DEEP' } });
  return text.replace('"DEEP"', `${'['.repeat(depth)}${']'.repeat(depth)}`);
}

/** Waits until the durable has `count` dead letters and returns them. */
function deadLetters(durable: string, count: number): Promise<StoredDeadLetter[]> {
  return waitFor(
    async () => {
      const rows = await deadLettersOf(durable);
      return rows.length >= count ? rows : null;
    },
    { description: `${count} dead letter(s) of ${durable}`, timeoutMs: 10_000 },
  );
}

describe('payload limits', () => {
  it('dead-letters a 10,000-deep payload on its first delivery as BUS.PAYLOAD_TOO_DEEP and handles the next', async () => {
    const durable = 'deep';
    const suffix = `step.${durable}.v1`;
    const handled: string[] = [];
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      // Long enough that a dead-letter insert on a loaded machine is not mistaken for a hang.
      ackWaitMs: 2_000,
      maxDeliver: 3,
      nakDelayMs: () => 100,
      handle: async (message) => {
        handled.push(message.data.key);
      },
    });
    try {
      const deep = deepStepFinished(10_000);
      await harness.bus.js.publish(harness.bus.subject(suffix), deep, { msgID: 'deep-1' });
      const [row] = await deadLetters(durable, 1);
      const valid = stepFinished({ key: 'after-deep' });
      await harness.bus.publish(harness.bus.subject(suffix), valid, { msgId: valid.id });
      await waitFor(() => handled.includes('after-deep'), { description: 'the valid message to be handled' });
      expect(row).toMatchObject({
        code: ErrorCodes.BUS_PAYLOAD_TOO_DEEP,
        messageId: 'deep-1',
        deliveryCount: 1,
        subject: `${harness.prefix}.${suffix}`,
      });
      expect(row?.reason).toContain('64');
      expect(row?.payload).toBe(deep);
      // Terminated on the first delivery: nothing pending, nothing redelivered past the ack wait.
      await sleep(2_500);
      expect(await consumerState(durable)).toEqual({ ackPending: 0, redelivered: 0 });
      expect((await deadLettersOf(durable)).map((letter) => letter.code)).toEqual([
        ErrorCodes.BUS_PAYLOAD_TOO_DEEP,
      ]);
      expect(handled).toEqual(['after-deep']);
    } finally {
      await consumer.stop();
    }
  });

  it('dead-letters a stack overflow in the handler as BUS.STACK_OVERFLOW, never retried', async () => {
    const durable = 'overflow';
    const suffix = `step.${durable}.v1`;
    let calls = 0;
    const recurse = (depth: number): number => recurse(depth + 1) + 1;
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      // Long enough that a dead-letter insert on a loaded machine is not mistaken for a hang.
      ackWaitMs: 2_000,
      maxDeliver: 3,
      nakDelayMs: () => 100,
      handle: async () => {
        calls += 1;
        recurse(0);
      },
    });
    try {
      const envelope = stepFinished({ key: 'overflow' });
      await harness.bus.publish(harness.bus.subject(suffix), envelope, { msgId: envelope.id });
      const [row] = await deadLetters(durable, 1);
      expect(row).toMatchObject({
        code: ErrorCodes.BUS_STACK_OVERFLOW,
        messageId: envelope.id,
        deliveryCount: 1,
      });
      await sleep(2_500);
      expect(calls).toBe(1);
      expect(await consumerState(durable)).toEqual({ ackPending: 0, redelivered: 0 });
      expect(await deadLettersOf(durable)).toHaveLength(1);
    } finally {
      await consumer.stop();
    }
  });

  it('dead-letters a payload over payloadLimits.maxBytes as BUS.PAYLOAD_TOO_LARGE and handles one within', async () => {
    const durable = 'large';
    const suffix = `step.${durable}.v1`;
    const handled: string[] = [];
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      ackWaitMs: 1_000,
      payloadLimits: { maxBytes: 2_048, maxDepth: 64 },
      handle: async (message) => {
        handled.push(message.data.key);
      },
    });
    try {
      const large = stepFinished({ key: 'x'.repeat(4_096) });
      await harness.bus.publish(harness.bus.subject(suffix), large, { msgId: large.id });
      // 60 levels under the envelope's two: within the default depth limit.
      const nested = JSON.parse(deepStepFinished(60).replace('"key":"deep"', '"key":"nested"'));
      await harness.bus.publish(harness.bus.subject(suffix), nested, { msgId: 'nested-1' });
      await waitFor(() => handled.includes('nested'), { description: 'the nested message to be handled' });
      const [row] = await deadLetters(durable, 1);
      expect(row).toMatchObject({
        code: ErrorCodes.BUS_PAYLOAD_TOO_LARGE,
        messageId: large.id,
        deliveryCount: 1,
      });
      expect(row?.reason).toMatch(/^payload is \d+ bytes; the limit is 2048$/);
      await waitFor(async () => (await consumerState(durable)).ackPending === 0, {
        description: 'all settled',
      });
      expect(handled).toEqual(['nested']);
    } finally {
      await consumer.stop();
    }
  });

  it('refuses payload limits that are not positive integers', async () => {
    await expect(
      harness.bus.consume({
        durable: 'bad-limits',
        subject: 'step.bad-limits.v1',
        schema: StepFinished.envelope,
        messageId: (message) => message.id,
        payloadLimits: { maxBytes: 0, maxDepth: 64 },
        handle: async () => undefined,
      }),
    ).rejects.toThrow('payloadLimits.maxBytes must be a positive integer, got 0');
  });
});
