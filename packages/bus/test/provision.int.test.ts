import { randomUUID } from 'node:crypto';
import { PublicSubjects, consumerNameFor, streamNameFor } from '@tandem/contracts';
import { cleanupNatsPrefix, createTestPrefix } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_CONSUMER_SETTINGS,
  connectBus,
  durableConsumers,
  provisionNats,
  provisionedConsumerFor,
} from '../src/index.js';
import { createHarness, testLogger, type Harness } from './harness.js';

const passthrough = { safeParse: (input: unknown) => ({ success: true as const, data: input }) };
let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

describe('provisionNats', () => {
  it('creates every declared durable consumer, and a second run changes nothing', async () => {
    const first = await provisionNats(harness.bus.jsm, {
      prefix: harness.prefix,
      settings: DEFAULT_CONSUMER_SETTINGS,
    });
    expect(Object.keys(first.consumers)).toHaveLength(durableConsumers().length);
    expect(Object.values(first.consumers).every((change) => change === 'created')).toBe(true);
    const sandbox = await harness.bus.jsm.consumers.info(
      streamNameFor(harness.prefix, 'sandbox'),
      consumerNameFor(harness.prefix, 'sandbox-run-requested'),
    );
    // Every consumer has the one short ack wait (TANDEM_ACK_WAIT_MS, 30 s): handlers are heartbeated.
    expect(sandbox.config.ack_wait).toBe(30_000 * 1_000_000);
    const second = await provisionNats(harness.bus.jsm, {
      prefix: harness.prefix,
      settings: DEFAULT_CONSUMER_SETTINGS,
    });
    expect(Object.values(second.consumers).every((change) => change === 'unchanged')).toBe(true);
    expect(Object.values(second.streams).every((change) => change === 'unchanged')).toBe(true);
    const third = await provisionNats(harness.bus.jsm, {
      prefix: harness.prefix,
      settings: { ...DEFAULT_CONSUMER_SETTINGS, maxDeliver: 7 },
    });
    expect(Object.values(third.consumers).every((change) => change === 'updated')).toBe(true);
    const fourth = await provisionNats(harness.bus.jsm, {
      prefix: harness.prefix,
      settings: { ...DEFAULT_CONSUMER_SETTINGS, maxDeliver: 7, ackWaitMs: 5_000 },
    });
    expect(Object.values(fourth.consumers).every((change) => change === 'updated')).toBe(true);
  });

  it('provisions a consumer exactly as bus.consume would create it', async () => {
    const prefix = createTestPrefix();
    const bus = await connectBus({
      servers: harness.natsUrl,
      prefix,
      name: 'bus-test',
      log: testLogger(),
      db: harness.db,
    });
    try {
      const running = await bus.consume({
        durable: 'planner-intake',
        subject: PublicSubjects.taskRequested,
        schema: passthrough,
        messageId: () => randomUUID(),
        handle: async () => undefined,
      });
      await running.stop();
      const spec = durableConsumers().find((consumer) => consumer.durable === 'planner-intake');
      if (spec === undefined) throw new Error('planner-intake is not declared');
      const { stream, config } = provisionedConsumerFor(prefix, spec, DEFAULT_CONSUMER_SETTINGS);
      const created = await bus.jsm.consumers.info(stream, config.durable_name);
      expect(created.config).toMatchObject(config);
      const provisioned = await provisionNats(bus.jsm, { prefix, settings: DEFAULT_CONSUMER_SETTINGS });
      expect(provisioned.consumers[config.durable_name]).toBe('unchanged');
    } finally {
      await bus.drain();
      await cleanupNatsPrefix(harness.natsUrl, prefix);
    }
  });

  it('lets a provisioned bus create nothing: no streams, and a missing consumer is BUS.NOT_PROVISIONED', async () => {
    const prefix = createTestPrefix();
    const bus = await connectBus({
      servers: harness.natsUrl,
      prefix,
      name: 'bus-test',
      log: testLogger(),
      db: harness.db,
      provisioned: true,
    });
    try {
      const names: string[] = [];
      for await (const name of bus.jsm.streams.names()) names.push(name);
      expect(names.filter((name) => name.startsWith(`${prefix.toUpperCase()}_`))).toEqual([]);
      await expect(
        bus.consume({
          durable: 'planner-intake',
          subject: PublicSubjects.taskRequested,
          schema: passthrough,
          messageId: () => randomUUID(),
          handle: async () => undefined,
        }),
      ).rejects.toMatchObject({ code: 'BUS.NOT_PROVISIONED' });
    } finally {
      await bus.drain();
    }
  });

  it('refuses, for a provisioned service, a consumer its topology does not declare', async () => {
    const bus = await connectBus({
      servers: harness.natsUrl,
      prefix: harness.prefix,
      name: 'planner',
      log: testLogger(),
      db: harness.db,
      provisioned: true,
    });
    try {
      const consume = (durable: string, subject: string) =>
        bus.consume({
          durable,
          subject,
          schema: passthrough,
          messageId: () => randomUUID(),
          handle: async () => undefined,
        });
      await expect(consume('executor-plan-proposed', 'plan.proposed.v1')).rejects.toMatchObject({
        code: 'BUS.NOT_PROVISIONED',
      });
      await expect(consume('planner-intake', 'task.accepted.v1')).rejects.toThrow(
        /declared on task.requested.v1/,
      );
      const running = await consume('planner-intake', PublicSubjects.taskRequested);
      await running.stop();
    } finally {
      await bus.drain();
    }
  });
});
