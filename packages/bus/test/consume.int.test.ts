import { ErrorCodes, StepFinished, TandemError, consumerNameFor, streamNameFor } from '@tandem/contracts';
import { markProcessed, transaction } from '@tandem/db';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageContext, RunningConsumer } from '../src/index.js';
import {
  createHarness,
  deadLettersOf as storedDeadLetters,
  deferred,
  sleep,
  stepFinished,
  type Harness,
  type StoredDeadLetter,
} from './harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

const STEP_STREAM = (): string => streamNameFor(harness.prefix, 'step');
type StepEnvelope = ReturnType<typeof stepFinished>;

/** Every test gets its own durable on its own subject (`step.<name>.v1`), so the tests don't see each other's messages. */
function subjectSuffix(name: string): string {
  return `step.${name}.v1`;
}

/** Publishes a valid envelope (a `step.finished` body) on the test's subject. */
async function publishStep(suffix: string, key = 'step-1'): Promise<StepEnvelope> {
  const envelope = stepFinished({ key });
  await harness.bus.publish(harness.bus.subject(suffix), envelope, { msgId: envelope.id });
  return envelope;
}

async function deadLettersOf(durable: string): Promise<StoredDeadLetter[]> {
  return storedDeadLetters(harness.db, consumerNameFor(harness.prefix, durable));
}

async function consumerState(
  durable: string,
): Promise<{ ackPending: number; pending: number; redelivered: number; ackFloor: number }> {
  const info = await harness.bus.jsm.consumers.info(STEP_STREAM(), consumerNameFor(harness.prefix, durable));
  return {
    ackPending: info.num_ack_pending,
    pending: info.num_pending,
    redelivered: info.num_redelivered,
    ackFloor: info.ack_floor.stream_seq,
  };
}

async function streamSeqOf(messageId: string): Promise<number> {
  const { jsm } = harness.bus;
  const info = await jsm.streams.info(STEP_STREAM());
  for (let seq = info.state.last_seq; seq >= info.state.first_seq; seq--) {
    const stored = await jsm.streams.getMessage(STEP_STREAM(), { seq });
    if (stored?.header.get('Nats-Msg-Id') === messageId) return seq;
  }
  throw new Error(`message ${messageId} not in the stream`);
}

interface Delivery {
  key: string;
  deliveryCount: number;
  context: MessageContext;
}

describe('consume', () => {
  it('acks after the handler (and its transaction) succeeded and does not redeliver', async () => {
    const durable = 'acks';
    const suffix = subjectSuffix(durable);
    const deliveries: Delivery[] = [];
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      ackWaitMs: 1_000,
      handle: async (message, context) => {
        await transaction(harness.db, async (tx) => {
          if (!(await markProcessed(tx, context.consumer, context.messageId))) return;
          deliveries.push({ key: message.data.key, deliveryCount: context.deliveryCount, context });
        });
      },
    });
    try {
      const envelope = await publishStep(suffix, 'only');
      await waitFor(() => deliveries.length === 1, { description: 'the message to be handled' });
      const [delivery] = deliveries;
      expect(delivery?.key).toBe('only');
      expect(delivery?.context).toMatchObject({
        messageId: envelope.id,
        consumer: consumerNameFor(harness.prefix, durable),
        subject: `${harness.prefix}.${suffix}`,
        deliveryCount: 1,
      });
      expect(delivery?.context.headers['Nats-Msg-Id']).toBe(envelope.id);
      await waitFor(async () => (await consumerState(durable)).ackPending === 0, {
        description: 'the ack to arrive',
      });
      // Longer than the ack wait: an unacked message would have come back by now.
      await sleep(1_500);
      const state = await consumerState(durable);
      expect(state).toMatchObject({ ackPending: 0, pending: 0, redelivered: 0 });
      expect(state.ackFloor).toBe(delivery?.context.streamSeq);
      expect(deliveries).toHaveLength(1);
      const processed = await harness.db.kysely
        .selectFrom('ProcessedMessage')
        .select('consumer')
        .where('messageId', '=', envelope.id)
        .execute();
      expect(processed).toHaveLength(1);
    } finally {
      await consumer.stop();
    }
  });

  it('redelivers a message whose handler threw a retryable error', async () => {
    const durable = 'retryable';
    const suffix = subjectSuffix(durable);
    const deliveryCounts: number[] = [];
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      nakDelayMs: () => 100,
      handle: async (_message, context) => {
        deliveryCounts.push(context.deliveryCount);
        if (context.deliveryCount === 1)
          throw new TandemError('MODEL.TIMEOUT', 'model timed out', { retryable: true });
      },
    });
    try {
      await publishStep(suffix);
      await waitFor(() => deliveryCounts.length === 2, { description: 'a redelivery' });
      await waitFor(async () => (await consumerState(durable)).ackPending === 0, {
        description: 'the ack to arrive',
      });
      expect(deliveryCounts).toEqual([1, 2]);
      expect(await deadLettersOf(durable)).toHaveLength(0);
    } finally {
      await consumer.stop();
    }
  });

  it('dead-letters and terminates a message whose handler threw a non-retryable error', async () => {
    const durable = 'permanent';
    const suffix = subjectSuffix(durable);
    let calls = 0;
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      ackWaitMs: 1_000,
      nakDelayMs: () => 100,
      handle: async () => {
        calls += 1;
        throw new TandemError(ErrorCodes.TOOL_UNKNOWN_FUNCTION, 'no such tool: frobnicate');
      },
    });
    try {
      const envelope = await publishStep(suffix);
      const [row] = await waitFor(
        async () => {
          const rows = await deadLettersOf(durable);
          return rows.length > 0 ? rows : null;
        },
        { description: 'a dead letter' },
      );
      expect(row).toMatchObject({
        code: ErrorCodes.TOOL_UNKNOWN_FUNCTION,
        reason: 'no such tool: frobnicate',
        messageId: envelope.id,
        subject: `${harness.prefix}.${suffix}`,
        deliveryCount: 1,
      });
      expect(JSON.parse(row?.payload ?? 'null')).toEqual(envelope);
      expect(harness.deadLetters.filter((info) => info.durable === durable)).toMatchObject([
        { code: ErrorCodes.TOOL_UNKNOWN_FUNCTION },
      ]);
      // Terminated: not pending, and not delivered again after the ack wait.
      await waitFor(async () => (await consumerState(durable)).ackPending === 0, {
        description: 'the term to arrive',
      });
      await sleep(1_500);
      expect(calls).toBe(1);
      expect(await deadLettersOf(durable)).toHaveLength(1);
    } finally {
      await consumer.stop();
    }
  });

  it('dead-letters garbage bytes as BUS.UNPARSEABLE and goes on with the next message', async () => {
    const durable = 'garbage';
    const suffix = subjectSuffix(durable);
    const handled: string[] = [];
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      handle: async (message) => {
        handled.push(message.data.key);
      },
    });
    try {
      await harness.bus.js.publish(
        harness.bus.subject(suffix),
        new Uint8Array([0xff, 0xfe, 0x7b, 0x00, 0x01]),
        { msgID: 'garbage-1' },
      );
      await harness.bus.js.publish(harness.bus.subject(suffix), '{"truncated": ', { msgID: 'garbage-2' });
      await publishStep(suffix, 'after-garbage');
      await waitFor(() => handled.includes('after-garbage'), {
        description: 'the good message to be handled',
      });
      const rows = await waitFor(
        async () => {
          const found = await deadLettersOf(durable);
          return found.length === 2 ? found : null;
        },
        { description: 'two dead letters' },
      );
      expect(rows.map((row) => row.code)).toEqual([ErrorCodes.BUS_UNPARSEABLE, ErrorCodes.BUS_UNPARSEABLE]);
      expect(rows.map((row) => row.messageId)).toEqual(['garbage-1', 'garbage-2']);
      expect(rows[1]?.payload).toBe('{"truncated": ');
      expect(handled).toEqual(['after-garbage']);
      await waitFor(async () => (await consumerState(durable)).ackPending === 0, {
        description: 'all settled',
      });
    } finally {
      await consumer.stop();
    }
  });

  it('dead-letters a message that fails its schema as BUS.SCHEMA_INVALID with the issues', async () => {
    const durable = 'schema';
    const suffix = subjectSuffix(durable);
    let calls = 0;
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      handle: async () => {
        calls += 1;
      },
    });
    try {
      const envelope = stepFinished();
      const invalid = { ...envelope, data: { ...envelope.data, taskId: 'not-a-uuid', status: 'maybe' } };
      await harness.bus.publish(harness.bus.subject(suffix), invalid, { msgId: envelope.id });
      const [row] = await waitFor(
        async () => {
          const rows = await deadLettersOf(durable);
          return rows.length > 0 ? rows : null;
        },
        { description: 'a dead letter' },
      );
      expect(row?.code).toBe(ErrorCodes.BUS_SCHEMA_INVALID);
      expect(row?.reason).toContain('data.taskId');
      expect(row?.reason).toContain('data.status');
      expect(row?.messageId).toBe(envelope.id);
      expect(calls).toBe(0);
    } finally {
      await consumer.stop();
    }
  });

  it('dead-letters a message whose handler always fails once maxDeliver is reached', async () => {
    const durable = 'always-fails';
    const suffix = subjectSuffix(durable);
    const deliveryCounts: number[] = [];
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      maxDeliver: 3,
      ackWaitMs: 1_000,
      nakDelayMs: () => 50,
      handle: async (_message, context) => {
        deliveryCounts.push(context.deliveryCount);
        throw new Error('database is down');
      },
    });
    try {
      const envelope = await publishStep(suffix);
      const [row] = await waitFor(
        async () => {
          const rows = await deadLettersOf(durable);
          return rows.length > 0 ? rows : null;
        },
        { description: 'a max-deliveries dead letter' },
      );
      expect(row).toMatchObject({
        code: ErrorCodes.BUS_MAX_DELIVERIES,
        deliveryCount: 3,
        messageId: envelope.id,
      });
      expect(row?.reason).toContain('database is down');
      await sleep(1_500);
      expect(deliveryCounts).toEqual([1, 2, 3]);
      expect(await deadLettersOf(durable)).toHaveLength(1);
    } finally {
      await consumer.stop();
    }
  });

  it('records the max-deliveries advisory as a dead letter when a handler never finishes', async () => {
    // The handler hangs past the ack wait on every delivery (like a process that dies mid-message):
    // the bus never sees a failure, so only the server's advisory can produce the dead letter.
    const durable = 'hangs';
    const suffix = subjectSuffix(durable);
    const release = deferred();
    const deliveryCounts: number[] = [];
    const replica = await harness.connectAnother();
    const consumers: RunningConsumer[] = [];
    try {
      // Two replicas on the same durable both subscribe to the advisory; one row must come out.
      for (const bus of [harness.bus, replica]) {
        consumers.push(
          await bus.consume({
            durable,
            subject: suffix,
            schema: StepFinished.envelope,
            messageId: (message) => message.id,
            maxDeliver: 2,
            ackWaitMs: 1_000,
            // Heartbeats stop after this long: the hung handler is then redelivered like a dead one.
            maxWorkingMs: 500,
            concurrency: 2,
            handle: async (_message, context) => {
              deliveryCounts.push(context.deliveryCount);
              await release.promise;
            },
          }),
        );
      }
      const envelope = await publishStep(suffix);
      const [row] = await waitFor(
        async () => {
          const rows = await deadLettersOf(durable);
          return rows.length > 0 ? rows : null;
        },
        { description: 'a dead letter from the advisory', timeoutMs: 15_000 },
      );
      expect(row).toMatchObject({
        code: ErrorCodes.BUS_MAX_DELIVERIES,
        deliveryCount: 2,
        messageId: envelope.id,
        subject: `${harness.prefix}.${suffix}`,
      });
      expect(row?.reason).toContain('not acknowledged after 2 deliveries');
      expect(JSON.parse(row?.payload ?? 'null')).toEqual(envelope);
      expect(deliveryCounts.sort()).toEqual([1, 2]);
      await sleep(500);
      expect(await deadLettersOf(durable)).toHaveLength(1);
    } finally {
      release.resolve();
      await Promise.all(consumers.map((consumer) => consumer.stop()));
    }
  });

  it('handles messages concurrently up to the limit', async () => {
    const durable = 'concurrent';
    const suffix = subjectSuffix(durable);
    let active = 0;
    let peak = 0;
    const handled: string[] = [];
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      concurrency: 3,
      handle: async (message) => {
        active += 1;
        peak = Math.max(peak, active);
        await sleep(100);
        active -= 1;
        handled.push(message.data.key);
      },
    });
    try {
      for (let index = 0; index < 9; index++) await publishStep(suffix, `k${index}`);
      await waitFor(() => handled.length === 9, { description: 'nine messages handled' });
      expect(peak).toBe(3);
    } finally {
      await consumer.stop();
    }
  });

  it('stop() waits for the handler in flight, acks it, and hands unstarted messages back', async () => {
    const durable = 'stopping';
    const suffix = subjectSuffix(durable);
    const started = deferred();
    const finished: string[] = [];
    const consumer = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      handle: async (message) => {
        started.resolve();
        await sleep(300);
        finished.push(message.data.key);
      },
    });
    const first = await publishStep(suffix, 'first');
    await publishStep(suffix, 'second');
    await started.promise;
    await consumer.stop();
    expect(finished).toEqual(['first']);
    const firstSeq = await streamSeqOf(first.id);
    await waitFor(async () => (await consumerState(durable)).ackFloor === firstSeq, {
      description: 'the first message acked',
    });

    // Another consumer gets the unstarted message right away: with the default 30 s ack wait only
    // the nak sent by stop() explains a redelivery within 3 s.
    const resumed: string[] = [];
    const next = await harness.bus.consume({
      durable,
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      handle: async (message) => {
        resumed.push(message.data.key);
      },
    });
    try {
      await waitFor(() => resumed.length === 1, { description: 'the second message', timeoutMs: 3_000 });
      expect(resumed).toEqual(['second']);
    } finally {
      await next.stop();
    }
  });
});
