import { randomUUID } from 'node:crypto';
import { PlanProposed, createEnvelope, type PlannedStep } from '@tandem/contracts';
import { enqueueOutbox, type OutboxMessage } from '@tandem/db';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, createOutboxRelay, type Bus, type OutboxRelay } from '../src/index.js';
import { createHarness, type Harness } from './harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

function relayFor(bus: Bus, publisher: string): OutboxRelay {
  return createOutboxRelay({ db: harness.db, bus, publisher, log: harness.log, pollIntervalMs: 100 });
}

async function enqueue(messages: readonly OutboxMessage[]): Promise<void> {
  await harness.db.prisma.$transaction(async (tx) => {
    await enqueueOutbox(tx, messages);
  });
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
    const noClaimChecks = { claimCheckThresholdBytes: null };
    const bus = await connectBus({
      servers: harness.natsUrl,
      prefix: harness.prefix,
      name: 'bus-test-plain',
      log: harness.log,
      db: harness.db,
      ...noClaimChecks,
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
      const deadLetter = await harness.db.prisma.deadLetter.findFirst({ where: { messageId: big } });
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
      const deadLetter = await harness.db.prisma.deadLetter.findFirst({ where: { messageId: bad } });
      expect(deadLetter?.code).toBe('BUS.OUTBOX_UNPUBLISHABLE');
      const row = await harness.db.prisma.outbox.findUnique({ where: { id: bad } });
      expect(row?.publishedAt).toBeNull();
    } finally {
      subscription.unsubscribe();
      await relay.stop();
    }
  });
});
