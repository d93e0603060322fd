import { randomUUID } from 'node:crypto';
import { ErrorCodes, StepFinished, TandemError, consumerNameFor } from '@tandem/contracts';
import { enqueueOutbox, type Tx } from '@tandem/db';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumersOf, startConsumer, type ConsumerDefinition, type RunningConsumer } from '../src/index.js';
import { createHarness, stepFinished, type Harness } from './harness.js';

let harness: Harness;
const running: RunningConsumer[] = [];

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await Promise.all(running.map((consumer) => consumer.stop()));
  await harness?.close();
});

type StepEnvelope = ReturnType<typeof stepFinished>;

/** Each test declares its own durable on its own subject, in a topology of its own. */
function declare<TResult>(
  durable: string,
  body:
    | {
        handle: (tx: Tx, message: StepEnvelope, deliveryCount: number) => Promise<TResult>;
        after?: (duplicate: boolean, deliveryCount: number) => Promise<void>;
      }
    | { run: ConsumerDefinition<Deps, StepEnvelope>['body']['run'] },
): ConsumerDefinition<Deps, StepEnvelope> {
  const subject = `step.${durable}.v1`;
  const define = consumersOf<Deps>('executor', { executor: { consumers: [{ durable, subject }] } });
  const source = { subject, schema: StepFinished.envelope, messageId: (message: StepEnvelope) => message.id };
  if ('run' in body && body.run) return define({ durable, ...source, run: body.run });
  if (!('handle' in body)) throw new Error('no body');
  return define<StepEnvelope, TResult>({
    durable,
    ...source,
    handle: (tx, message, context) => body.handle(tx, message, context.deliveryCount),
    ...(body.after
      ? {
          after: (committed, _message, context) =>
            body.after?.(committed.duplicate, context.deliveryCount) ?? Promise.resolve(),
        }
      : {}),
  });
}

interface Deps {
  label: string;
}

async function start(definition: ConsumerDefinition<Deps, StepEnvelope>): Promise<void> {
  running.push(
    await startConsumer(
      { bus: harness.bus, db: harness.db },
      definition,
      { label: 'deps' },
      {
        ackWaitMs: 2_000,
        maxDeliver: 3,
        nakDelayMs: () => 50,
      },
    ),
  );
}

async function publish(durable: string): Promise<StepEnvelope> {
  const envelope = stepFinished();
  await harness.bus.publish(harness.bus.subject(`step.${durable}.v1`), envelope, { msgId: envelope.id });
  return envelope;
}

async function inboxRows(durable: string, messageId: string): Promise<number> {
  const rows = await harness.db.kysely
    .selectFrom('ProcessedMessage')
    .select('messageId')
    .where('consumer', '=', durable)
    .where('messageId', '=', messageId)
    .execute();
  return rows.length;
}

async function deadLetters(
  durable: string,
): Promise<Array<{ code: string; reason: string; deliveryCount: number | null }>> {
  return harness.db.kysely
    .selectFrom('DeadLetter')
    .select(['code', 'reason', 'deliveryCount'])
    .where('consumer', '=', consumerNameFor(harness.prefix, durable))
    .execute();
}

describe('a declared consumer', () => {
  it('writes its inbox row in the handler transaction, then runs after on commit and acks', async () => {
    const seen: string[] = [];
    const definition = declare('fw-commit', {
      handle: async (tx, message) => {
        seen.push(`handle:${message.data.key}`);
        await enqueueOutbox(tx, {
          id: randomUUID(),
          publisher: 'fw-test',
          subject: `${harness.prefix}.step.fw-out.v1`,
          payload: { from: message.id },
        });
        return 7;
      },
      after: async (duplicate) => {
        seen.push(`after:${duplicate}`);
      },
    });
    await start(definition);
    const envelope = await publish('fw-commit');
    await waitFor(() => seen.includes('after:false'), {
      timeoutMs: 10_000,
      description: 'the consumer to settle the message',
    });
    expect(seen).toEqual(['handle:step-1', 'after:false']);
    expect(await inboxRows('fw-commit', envelope.id)).toBe(1);
    const outbox = await harness.db.kysely
      .selectFrom('Outbox')
      .select('payload')
      .where('publisher', '=', 'fw-test')
      .execute();
    expect(outbox.map((row) => row.payload)).toEqual([{ from: envelope.id }]);
  });

  it('acks a message its ignore() declines with no transaction and no inbox row, and handles the others', async () => {
    const durable = 'fw-ignore';
    const subject = `step.${durable}.v1`;
    const define = consumersOf<Deps>('executor', { executor: { consumers: [{ durable, subject }] } });
    const handled: string[] = [];
    const settled: string[] = [];
    await start(
      define({
        durable,
        subject,
        schema: StepFinished.envelope,
        messageId: (message) => message.id,
        // Only completed steps ask anything of this consumer.
        ignore: (message) => {
          if (message.data.status !== 'completed') settled.push(message.id);
          return message.data.status !== 'completed';
        },
        handle: async (_tx, message) => {
          handled.push(message.id);
        },
        after: async (_committed, message) => {
          settled.push(message.id);
        },
      }),
    );
    const finished = stepFinished();
    const failed = { ...finished, data: { ...finished.data, status: 'failed' as const } };
    await harness.bus.publish(harness.bus.subject(subject), failed, { msgId: failed.id });
    const completed = await publish(durable);
    await waitFor(() => settled.length === 2, { timeoutMs: 10_000, description: 'both messages settled' });
    expect(handled).toEqual([completed.id]);
    expect(await inboxRows(durable, failed.id)).toBe(0);
    expect(await inboxRows(durable, completed.id)).toBe(1);
  });

  it('skips handle for a redelivered message that already committed, and still runs after', async () => {
    const seen: Array<{ duplicate: boolean; deliveryCount: number }> = [];
    let handled = 0;
    const definition = declare('fw-duplicate', {
      handle: async () => {
        handled++;
      },
      after: async (duplicate, deliveryCount) => {
        seen.push({ duplicate, deliveryCount });
        // The first delivery committed, then its after failed: the message comes back.
        if (deliveryCount === 1) throw new Error('after failed once');
      },
    });
    await start(definition);
    await publish('fw-duplicate');
    await waitFor(() => seen.length === 2, {
      timeoutMs: 10_000,
      description: 'the consumer to settle the message',
    });
    expect(handled).toBe(1);
    expect(seen).toEqual([
      { duplicate: false, deliveryCount: 1 },
      { duplicate: true, deliveryCount: 2 },
    ]);
  });

  it('naks a retryable error with a delay, rolls back its writes, and handles the redelivery', async () => {
    const attempts: number[] = [];
    const definition = declare('fw-retry', {
      handle: async (tx, message, deliveryCount) => {
        attempts.push(deliveryCount);
        await enqueueOutbox(tx, {
          id: randomUUID(),
          publisher: 'fw-retry',
          subject: `${harness.prefix}.step.fw-out.v1`,
          payload: { attempt: deliveryCount, of: message.id },
        });
        if (deliveryCount === 1)
          throw new TandemError(ErrorCodes.DB_CONNECTION_LOST, 'lost', { retryable: true });
      },
    });
    await start(definition);
    const envelope = await publish('fw-retry');
    await waitFor(async () => (await inboxRows('fw-retry', envelope.id)) === 1, {
      timeoutMs: 10_000,
      description: 'the consumer to settle the message',
    });
    expect(attempts).toEqual([1, 2]);
    const outbox = await harness.db.kysely
      .selectFrom('Outbox')
      .select('payload')
      .where('publisher', '=', 'fw-retry')
      .execute();
    // The first attempt's row rolled back with its transaction.
    expect(outbox.map((row) => row.payload)).toEqual([{ attempt: 2, of: envelope.id }]);
    expect(await deadLetters('fw-retry')).toEqual([]);
  });

  it('dead-letters a non-retryable error on its first delivery and records nothing else', async () => {
    let attempts = 0;
    const definition = declare('fw-permanent', {
      handle: async () => {
        attempts++;
        throw new TandemError(ErrorCodes.APPROVAL_UNVERIFIED, 'no decided request backs this event');
      },
    });
    await start(definition);
    const envelope = await publish('fw-permanent');
    await waitFor(async () => (await deadLetters('fw-permanent')).length === 1, {
      timeoutMs: 10_000,
      description: 'the consumer to settle the message',
    });
    expect(await deadLetters('fw-permanent')).toEqual([
      {
        code: ErrorCodes.APPROVAL_UNVERIFIED,
        reason: 'no decided request backs this event',
        deliveryCount: 1,
      },
    ]);
    expect(attempts).toBe(1);
    expect(await inboxRows('fw-permanent', envelope.id)).toBe(0);
  });

  it('dead-letters a retryable error that lasts past the last delivery as BUS.MAX_DELIVERIES', async () => {
    const definition = declare('fw-exhausted', {
      handle: async () => {
        throw new TandemError(ErrorCodes.MODEL_UNAVAILABLE, 'no model answers', { retryable: true });
      },
    });
    await start(definition);
    await publish('fw-exhausted');
    await waitFor(async () => (await deadLetters('fw-exhausted')).length === 1, {
      timeoutMs: 10_000,
      description: 'the consumer to settle the message',
    });
    const [letter] = await deadLetters('fw-exhausted');
    expect(letter?.code).toBe(ErrorCodes.BUS_MAX_DELIVERIES);
    expect(letter?.deliveryCount).toBe(3);
    expect(letter?.reason).toContain('no model answers');
  });

  it('records a staged consumer that returned without committing, once', async () => {
    const runs: Array<{ processed: boolean; label: string }> = [];
    const definition = declare('fw-staged', {
      run: async (_message, context) => {
        runs.push({ processed: await context.processed(), label: context.deps.label });
      },
    });
    await start(definition);
    const envelope = await publish('fw-staged');
    await waitFor(async () => (await inboxRows('fw-staged', envelope.id)) === 1, {
      timeoutMs: 10_000,
      description: 'the consumer to settle the message',
    });
    expect(runs).toEqual([{ processed: false, label: 'deps' }]);
  });

  it('refuses a durable the topology does not declare, or declares on another subject', () => {
    const define = consumersOf<Deps>('executor', {
      executor: { consumers: [{ durable: 'known', subject: 'step.known.v1' }] },
    });
    const source = { schema: StepFinished.envelope, messageId: (message: StepEnvelope) => message.id };
    expect(() =>
      define({ durable: 'unknown', subject: 'step.known.v1', ...source, handle: async () => undefined }),
    ).toThrow(/declares no durable consumer unknown/);
    expect(() =>
      define({ durable: 'known', subject: 'step.other.v1', ...source, handle: async () => undefined }),
    ).toThrow(/consumes step.known.v1 in topology.ts, not step.other.v1/);
  });
});
