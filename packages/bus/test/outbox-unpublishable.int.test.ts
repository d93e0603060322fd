import { randomUUID } from 'node:crypto';
import { PlanProposed, createEnvelope, type PlannedStep } from '@tandem/contracts';
import { enqueueOutbox, transaction, type OutboxMessage } from '@tandem/db';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  CLAIM_CHECK_HEADER,
  REPLACES_HEADER,
  connectBus,
  createOutboxRelay,
  type Bus,
  type MessageSchema,
  type OutboxRelay,
} from '../src/index.js';
import { createHarness, enqueueOn, outboxRow, type Harness } from './harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

/** Accepts any payload. */
const anything: MessageSchema<unknown> = { safeParse: (input) => ({ success: true, data: input }) };

function relayFor(bus: Bus, publisher: string): OutboxRelay {
  return createOutboxRelay({ db: harness.db, bus, publisher, log: harness.log, pollIntervalMs: 100 });
}

/** Enqueues on the pool no relay is registered on (another process's): only the relays' polls find the rows. */
async function enqueue(messages: readonly OutboxMessage[]): Promise<void> {
  await enqueueOn(harness.outsideDb, messages);
}

/** The first dead letter with a field equal to `value`, or undefined. */
function deadLetterWhere(column: 'id' | 'messageId', value: string) {
  return harness.db.kysely.selectFrom('DeadLetter').selectAll().where(column, '=', value).executeTakeFirst();
}

/** A `plan.proposed` of five write_file steps of 240,000 characters each: about 1.2 MB of JSON. */
function bigPlan() {
  const taskId = randomUUID();
  const steps: PlannedStep[] = Array.from({ length: 5 }, (_, index) => ({
    stepId: randomUUID(),
    key: `write-${index}`,
    index,
    tool: 'write_file',
    arguments: { path: `out/part-${index}.txt`, content: String.fromCharCode(97 + index).repeat(240_000) },
    riskClass: 'write',
    sideEffects: true,
    dependsOn: [],
  }));
  return createEnvelope(
    PlanProposed,
    {
      taskId,
      planId: randomUUID(),
      version: 1,
      request: { source: 'test', id: randomUUID() },
      kind: 'general',
      agentId: null,
      steps,
    },
    { correlationId: taskId },
  );
}

describe('an outbox row that cannot be published as it is', () => {
  it('a 1.2 MB plan.proposed is published and reaches a consumer of plan.proposed with its whole payload', async () => {
    const publisher = 'planner-big';
    const plan = bigPlan();
    expect(JSON.stringify(plan).length).toBeGreaterThan(1_200_000);
    const received: unknown[] = [];
    const consumer = await harness.bus.consume({
      durable: 'big-plan-reader',
      subject: PlanProposed.subjectSuffix,
      schema: PlanProposed.envelope,
      messageId: (envelope) => envelope.id,
      handle: async (envelope) => {
        received.push(envelope);
      },
    });
    const relay = relayFor(harness.bus, publisher);
    try {
      await enqueue([
        {
          id: plan.id,
          publisher,
          subject: harness.bus.subject(PlanProposed.subjectSuffix),
          payload: JSON.parse(JSON.stringify(plan)),
        },
      ]);
      relay.start();
      await waitFor(async () => received.length > 0, {
        description: 'the big plan consumed',
        timeoutMs: 15_000,
      });
      expect(received).toEqual([JSON.parse(JSON.stringify(plan))]);
      expect(harness.deadLetters).toEqual([]);
    } finally {
      await relay.stop();
      await consumer.stop();
    }
  });

  it('an over-size row (payload over max_payload, no claim check) is dead-lettered and the next row goes out', async () => {
    const publisher = 'sandbox-oversize';
    const suffix = 'sandbox.oversize.v1';
    // A bus that sends every payload as it is (claim checks off): a 1 MiB payload is over max_payload.
    const bus = await connectBus({
      servers: harness.natsUrl,
      prefix: harness.prefix,
      name: 'bus-test-plain',
      log: harness.log,
      db: harness.db,
      claimCheckThresholdBytes: null,
    });
    const big = randomUUID();
    const small = randomUUID();
    const seen: string[] = [];
    const subscription = harness.bus.nc.subscribe(harness.bus.subject(suffix), {
      callback: (error, message) => {
        if (error === null) seen.push(message.headers?.get('Nats-Msg-Id') ?? '');
      },
    });
    const relay = relayFor(bus, publisher);
    try {
      await enqueue([
        {
          id: big,
          publisher,
          subject: harness.bus.subject(suffix),
          payload: { stdout: 'x'.repeat(1_049_000) },
        },
        { id: small, publisher, subject: harness.bus.subject(suffix), payload: { result: 42 } },
      ]);
      relay.start();
      await waitFor(async () => seen.includes(small), {
        description: 'the small row published behind the big one',
        timeoutMs: 10_000,
      });
      expect(seen).toEqual([small]);
      const deadLetter = await deadLetterWhere('messageId', big);
      expect(deadLetter?.code).toBe('BUS.OUTBOX_UNPUBLISHABLE');
      expect(deadLetter?.reason).toMatch(/max_payload/);
    } finally {
      subscription.unsubscribe();
      await relay.stop();
      await bus.drain();
    }
  });

  it('a row on a subject the bus may not publish on is dead-lettered and the next row goes out', async () => {
    const publisher = 'sandbox-bad-subject';
    const suffix = 'sandbox.bad-subject.v1';
    const bad = randomUUID();
    const small = randomUUID();
    const seen: string[] = [];
    const subscription = harness.bus.nc.subscribe(harness.bus.subject(suffix), {
      callback: (error, message) => {
        if (error === null) seen.push(message.headers?.get('Nats-Msg-Id') ?? '');
      },
    });
    const relay = relayFor(harness.bus, publisher);
    try {
      await enqueue([
        // Outside the deployment prefix: the bus refuses it every time.
        { id: bad, publisher, subject: 'elsewhere.sandbox.bad-subject.v1', payload: { n: 1 } },
        { id: small, publisher, subject: harness.bus.subject(suffix), payload: { n: 2 } },
      ]);
      relay.start();
      await waitFor(async () => seen.includes(small), {
        description: 'the row behind the unpublishable one published',
        timeoutMs: 10_000,
      });
      const deadLetter = await deadLetterWhere('messageId', bad);
      expect(deadLetter?.code).toBe('BUS.OUTBOX_UNPUBLISHABLE');
      const row = await outboxRow(harness.db, bad);
      expect(row?.publishedAt).toBeNull();
    } finally {
      subscription.unsubscribe();
      await relay.stop();
    }
  });
});

describe('claim checks', () => {
  it('on the wire a big payload is a small reference with Tandem-Claim-Check; a small one is itself', async () => {
    const publisher = 'claim-wire';
    const suffix = 'sandbox.claim-wire.v1';
    const big = randomUUID();
    const small = randomUUID();
    const wire = new Map<string, { bytes: number; header: string | undefined; body: unknown }>();
    const subscription = harness.bus.nc.subscribe(harness.bus.subject(suffix), {
      callback: (error, message) => {
        if (error !== null) return;
        wire.set(message.headers?.get('Nats-Msg-Id') ?? '', {
          bytes: message.data.length,
          header: message.headers?.has(CLAIM_CHECK_HEADER)
            ? message.headers.get(CLAIM_CHECK_HEADER)
            : undefined,
          body: message.json(),
        });
      },
    });
    const relay = relayFor(harness.bus, publisher);
    try {
      await enqueue([
        {
          id: big,
          publisher,
          subject: harness.bus.subject(suffix),
          payload: { stdout: 'y'.repeat(300_000) },
        },
        { id: small, publisher, subject: harness.bus.subject(suffix), payload: { stdout: 'ok' } },
      ]);
      relay.start();
      await waitFor(async () => wire.size === 2, { description: 'both published' });
      expect(wire.get(big)).toEqual({
        bytes: expect.any(Number),
        header: big,
        body: { claimCheck: { outboxId: big, bytes: 300_013 } },
      });
      expect(wire.get(big)?.bytes).toBeLessThan(200);
      expect(wire.get(small)).toEqual({ bytes: 15, header: undefined, body: { stdout: 'ok' } });
    } finally {
      subscription.unsubscribe();
      await relay.stop();
    }
  });

  it("a claim check that names another subject's row, or no row, is dead-lettered as BUS.CLAIM_CHECK_MISSING", async () => {
    const suffix = 'sandbox.claim-forged.v1';
    const otherRow = randomUUID();
    await enqueue([
      {
        id: otherRow,
        publisher: 'claim-other',
        subject: harness.bus.subject('sandbox.other.v1'),
        payload: { n: 1 },
      },
    ]);
    const handled: unknown[] = [];
    const consumer = await harness.bus.consume({
      durable: 'claim-forged-reader',
      subject: suffix,
      schema: anything,
      messageId: () => randomUUID(),
      handle: async (message) => {
        handled.push(message);
      },
    });
    try {
      const missing = randomUUID();
      for (const id of [otherRow, missing]) {
        const headers = natsHeaders();
        headers.set(CLAIM_CHECK_HEADER, id);
        await harness.bus.js.publish(
          harness.bus.subject(suffix),
          JSON.stringify({ claimCheck: { outboxId: id, bytes: 1 } }),
          { msgID: id, headers },
        );
      }
      await waitFor(
        async () => harness.deadLetters.filter((info) => info.durable === 'claim-forged-reader').length === 2,
        { description: 'both dead-lettered' },
      );
      const codes = harness.deadLetters
        .filter((info) => info.durable === 'claim-forged-reader')
        .map((info) => info.code);
      expect(codes).toEqual(['BUS.CLAIM_CHECK_MISSING', 'BUS.CLAIM_CHECK_MISSING']);
    } finally {
      await consumer.stop();
    }
    expect(handled).toEqual([]);
  });
});

describe('the onUnpublishable hook', () => {
  it("replaces an unpublishable row with its messages in the dead letter's transaction; a bad replacement does not loop", async () => {
    const publisher = 'hooked';
    const suffix = 'sandbox.hooked.v1';
    const subject = harness.bus.subject(suffix);
    const seen: Array<{ id: string; replaces: string | undefined; body: unknown }> = [];
    const subscription = harness.bus.nc.subscribe(subject, {
      callback: (error, message) => {
        if (error !== null) return;
        seen.push({
          id: message.headers?.get('Nats-Msg-Id') ?? '',
          replaces: message.headers?.has(REPLACES_HEADER) ? message.headers.get(REPLACES_HEADER) : undefined,
          body: message.json(),
        });
      },
    });
    const bus = await connectBus({
      servers: harness.natsUrl,
      prefix: harness.prefix,
      name: 'bus-test-hook',
      log: harness.log,
      db: harness.db,
      claimCheckThresholdBytes: null,
    });
    const failed = randomUUID();
    const replacement = randomUUID();
    const looping = randomUUID();
    const hookedRows: string[] = [];
    const counted: string[] = [];
    const relay = createOutboxRelay({
      db: harness.db,
      bus,
      publisher,
      log: harness.log,
      pollIntervalMs: 50,
      onDeadLetter: (info) => counted.push(`${info.consumer} ${info.code} ${info.outboxId}`),
      onUnpublishable: (row) => {
        hookedRows.push(row.id);
        expect(row.error.code).toBe('BUS.PAYLOAD_TOO_LARGE');
        if (row.id === looping) {
          // A replacement that cannot be published either: dead-lettered without asking again.
          return [{ id: randomUUID(), publisher, subject, payload: { again: 'z'.repeat(1_100_000) } }];
        }
        return [
          {
            id: replacement,
            publisher,
            subject,
            payload: { failed: row.id, code: 'BUS.OUTBOX_UNPUBLISHABLE' },
          },
        ];
      },
    });
    relay.start();
    try {
      // Through a typed transaction on the relay's own pool: the hand-over path.
      await transaction(harness.db, async (tx) => {
        await enqueueOutbox(tx, {
          id: failed,
          publisher,
          subject,
          payload: { stdout: 'x'.repeat(1_100_000) },
        });
      });
      await waitFor(async () => seen.length === 1, { description: 'the replacement published' });
      expect(seen).toEqual([
        { id: replacement, replaces: failed, body: { failed, code: 'BUS.OUTBOX_UNPUBLISHABLE' } },
      ]);
      const deadLetter = await deadLetterWhere('id', failed);
      expect(deadLetter).toMatchObject({
        consumer: `outbox:${publisher}`,
        subject,
        messageId: failed,
        code: 'BUS.OUTBOX_UNPUBLISHABLE',
      });
      expect(deadLetter?.reason).toMatch(/^BUS.PAYLOAD_TOO_LARGE: /);
      expect(JSON.parse(deadLetter?.payload ?? '{}')).toEqual({ stdout: 'x'.repeat(1_100_000) });
      const row = await outboxRow(harness.db, failed);
      expect(row?.deadLetteredAt).not.toBeNull();
      expect(row?.publishedAt).toBeNull();

      // Through another pool (the poll), with a replacement that is unpublishable too.
      await enqueue([{ id: looping, publisher, subject, payload: { stdout: 'w'.repeat(1_100_000) } }]);
      await waitFor(
        async () =>
          (
            await harness.db.kysely
              .selectFrom('DeadLetter')
              .select('id')
              .where('consumer', '=', `outbox:${publisher}`)
              .execute()
          ).length === 3,
        {
          description: 'the row and its replacement dead-lettered',
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(hookedRows).toEqual([failed, looping]);
      expect(counted).toHaveLength(3);
      expect(counted[0]).toBe(`outbox:${publisher} BUS.OUTBOX_UNPUBLISHABLE ${failed}`);
      expect(await relay.oldestUnpublishedAgeMs()).toBeNull();
    } finally {
      subscription.unsubscribe();
      await relay.stop();
      await bus.drain();
    }
  });

  it('oldestUnpublishedAgeMs reports a relay that is not draining', async () => {
    const publisher = 'stuck';
    const relay = relayFor(harness.bus, publisher);
    expect(await relay.oldestUnpublishedAgeMs()).toBeNull();
    await enqueue([
      { id: randomUUID(), publisher, subject: harness.bus.subject('sandbox.stuck.v1'), payload: {} },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 250));
    // Not started: the row waits.
    expect(await relay.oldestUnpublishedAgeMs()).toBeGreaterThanOrEqual(200);
    relay.start();
    try {
      await waitFor(async () => (await relay.oldestUnpublishedAgeMs()) === null, { description: 'drained' });
    } finally {
      await relay.stop();
    }
  });
});
