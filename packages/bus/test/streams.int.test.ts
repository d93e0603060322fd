import { Entities, StepFinished, streamNameFor } from '@tandem/contracts';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_STREAM_MAX_AGE_MS, DUPLICATE_WINDOW_MS, connectBus, ensureStreams } from '../src/index.js';
import { createHarness, stepFinished, type Harness } from './harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

describe('streams', () => {
  it('creates one file-storage stream per entity under the prefix', async () => {
    const { jsm } = harness.bus;
    for (const entity of Entities) {
      const info = await jsm.streams.info(streamNameFor(harness.prefix, entity));
      expect(info.config.subjects).toEqual([`${harness.prefix}.${entity}.>`]);
      expect(info.config.storage).toBe('file');
      expect(info.config.retention).toBe('limits');
      expect(info.config.duplicate_window).toBe(nanos(DUPLICATE_WINDOW_MS));
      expect(info.config.max_age).toBe(nanos(DEFAULT_STREAM_MAX_AGE_MS));
    }
  });

  it('is idempotent when several processes create the streams at once', async () => {
    const prefixes = [`${harness.prefix}_x`, `${harness.prefix}_y`];
    const connections = await Promise.all([1, 2, 3].map(() => connect({ servers: harness.natsUrl })));
    try {
      const managers = await Promise.all(connections.map((nc) => jetstreamManager(nc)));
      const [first] = managers;
      if (first === undefined) throw new Error('no manager');

      // Same config from three processes at once: all succeed.
      const [same] = prefixes;
      const results = await Promise.all(managers.map((jsm) => ensureStreams(jsm, { prefix: same! })));
      for (const result of results) {
        expect(Object.keys(result).sort()).toEqual(
          Entities.map((entity) => streamNameFor(same!, entity)).sort(),
        );
        for (const change of Object.values(result)) expect(['created', 'unchanged']).toContain(change);
      }
      for (const entity of Entities) {
        const info = await first.streams.info(streamNameFor(same!, entity));
        expect(info.config.subjects).toEqual([`${same}.${entity}.>`]);
      }
      // A second run changes nothing; a new max age is applied in place.
      const again = await ensureStreams(first, { prefix: same! });
      expect(new Set(Object.values(again))).toEqual(new Set(['unchanged']));
      const updated = await ensureStreams(first, { prefix: same!, maxAgeMs: 60 * 60 * 1000 });
      expect(new Set(Object.values(updated))).toEqual(new Set(['updated']));
      expect((await first.streams.info(streamNameFor(same!, 'task'))).config.max_age).toBe(
        nanos(60 * 60 * 1000),
      );

      // Different configs racing (a rolling deploy changing retention): the loser of each add
      // ("name already in use") falls back to update instead of failing.
      const [, differing] = prefixes;
      await Promise.all(
        managers.map((jsm, index) =>
          ensureStreams(jsm, { prefix: differing!, maxAgeMs: (index + 1) * 60 * 60 * 1000 }),
        ),
      );
      for (const entity of Entities) {
        const info = await first.streams.info(streamNameFor(differing!, entity));
        expect([1, 2, 3].map((hours) => nanos(hours * 60 * 60 * 1000))).toContain(info.config.max_age);
      }
    } finally {
      const jsm = await jetstreamManager(connections[0]!);
      for (const prefix of prefixes) {
        for (const entity of Entities)
          await jsm.streams.delete(streamNameFor(prefix, entity)).catch(() => false);
      }
      await Promise.all(connections.map((nc) => nc.close()));
    }
  });

  it('connects twice concurrently on the same prefix without failing', async () => {
    const buses = await Promise.all(
      [1, 2].map(() =>
        connectBus({
          servers: harness.natsUrl,
          prefix: harness.prefix,
          name: 'concurrent',
          log: harness.log,
          db: harness.db,
        }),
      ),
    );
    await Promise.all(buses.map((bus) => bus.drain()));
  });
});

describe('publish', () => {
  it('stores one message when the same msgId is published twice', async () => {
    const subject = harness.bus.subject('approval.requested.v1');
    const stream = streamNameFor(harness.prefix, 'approval');
    const before = (await harness.bus.jsm.streams.info(stream)).state.messages;
    const first = await harness.bus.publish(subject, { n: 1 }, { msgId: 'same-id' });
    const second = await harness.bus.publish(subject, { n: 2 }, { msgId: 'same-id' });
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.seq).toBe(first.seq);
    expect((await harness.bus.jsm.streams.info(stream)).state.messages).toBe(before + 1);
    const stored = await harness.bus.jsm.streams.getMessage(stream, { seq: first.seq });
    expect(stored?.json()).toEqual({ n: 1 });
    expect(stored?.header.get('Nats-Msg-Id')).toBe('same-id');
  });

  it('sends headers and refuses subjects outside the prefix', async () => {
    const ack = await harness.bus.publish(
      harness.bus.subject('plan.proposed.v1'),
      { ok: true },
      { msgId: 'with-headers', headers: { 'Tandem-Test': 'yes' } },
    );
    const stored = await harness.bus.jsm.streams.getMessage(streamNameFor(harness.prefix, 'plan'), {
      seq: ack.seq,
    });
    expect(stored?.header.get('Tandem-Test')).toBe('yes');
    await expect(harness.bus.publish('elsewhere.plan.proposed.v1', {}, { msgId: 'x' })).rejects.toThrow(
      /not under the prefix/,
    );
  });

  it('publishEvent validates the envelope and uses its id as Nats-Msg-Id', async () => {
    const envelope = stepFinished();
    const ack = await harness.bus.publishEvent(StepFinished, envelope);
    const stream = streamNameFor(harness.prefix, 'step');
    const stored = await harness.bus.jsm.streams.getMessage(stream, { seq: ack.seq });
    expect(stored?.subject).toBe(`${harness.prefix}.step.finished.v1`);
    expect(stored?.header.get('Nats-Msg-Id')).toBe(envelope.id);
    expect(stored?.json()).toEqual(envelope);

    const before = (await harness.bus.jsm.streams.info(stream)).state.messages;
    const malformed = { ...envelope, id: 'not-a-uuid', correlationId: '' };
    await expect(harness.bus.publishEvent(StepFinished, malformed)).rejects.toThrow(
      /does not match its schema/,
    );
    expect((await harness.bus.jsm.streams.info(stream)).state.messages).toBe(before);
  });
});
