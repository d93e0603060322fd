import { randomUUID } from 'node:crypto';
import { streamNameFor } from '@tandem/contracts';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboxRelay, ensureStreams, type OutboxRelay } from '../src/index.js';
import { createHarness, enqueueOn, outboxRow, type Harness } from './harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

const SANDBOX_STREAM = (): string => streamNameFor(harness.prefix, 'sandbox');

interface StoredEvent {
  seq: number;
  msgId: string;
  subject: string;
  body: unknown;
  headers: Record<string, string>;
}

/** Every message in the sandbox stream on `suffix`, in stream order. */
async function storedOn(suffix: string): Promise<StoredEvent[]> {
  const { jsm } = harness.bus;
  const stream = SANDBOX_STREAM();
  const subject = harness.bus.subject(suffix);
  const info = await jsm.streams.info(stream);
  const found: StoredEvent[] = [];
  if (info.state.messages === 0) return found;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const stored = await jsm.streams.getMessage(stream, { seq });
    if (stored === null || stored.subject !== subject) continue;
    const headers: Record<string, string> = {};
    for (const name of stored.header.keys()) headers[name] = stored.header.get(name);
    found.push({
      seq,
      msgId: stored.header.get('Nats-Msg-Id'),
      subject: stored.subject,
      body: stored.json(),
      headers,
    });
  }
  return found;
}

/**
 * Enqueues `count` rows for `publisher` on `suffix` in one typed transaction on the pool no relay is
 * registered on (another process's), so only kicks and polls publish them; returns their ids in order.
 */
async function enqueue(publisher: string, suffix: string, count: number, from = 0): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  await enqueueOn(
    harness.outsideDb,
    ids.map((id, index) => ({
      id,
      publisher,
      subject: harness.bus.subject(suffix),
      payload: { n: from + index },
      headers: { 'Tandem-Test': `row-${from + index}` },
    })),
  );
  return ids;
}

async function unpublishedCount(publisher: string): Promise<number> {
  const rows = await harness.db.kysely
    .selectFrom('Outbox')
    .select('id')
    .where('publisher', '=', publisher)
    .where('publishedAt', 'is', null)
    .execute();
  return rows.length;
}

function relayFor(publisher: string, pollIntervalMs = 60_000, batchSize = 4): OutboxRelay {
  return createOutboxRelay({
    db: harness.db,
    bus: harness.bus,
    publisher,
    batchSize,
    pollIntervalMs,
    log: harness.log,
  });
}

describe('outbox relay', () => {
  it('publishes enqueued rows in order, exactly once, with Nats-Msg-Id = outbox id', async () => {
    const publisher = 'relay-order';
    const suffix = 'sandbox.relay-order.v1';
    // Another publisher's rows are not this relay's business.
    await enqueue('someone-else', suffix, 2, 100);
    const ids = await enqueue(publisher, suffix, 10);
    // A long poll interval: only kicks (and the start) make it publish.
    const relay = relayFor(publisher);
    relay.start();
    try {
      await waitFor(async () => (await unpublishedCount(publisher)) === 0, {
        description: 'all rows published',
      });
      const stored = await storedOn(suffix);
      expect(stored.map((event) => event.msgId)).toEqual(ids);
      expect(stored.map((event) => event.body)).toEqual(ids.map((_, index) => ({ n: index })));
      expect(stored[3]?.headers['Tandem-Test']).toBe('row-3');

      // Coalesced kicks with nothing new publish nothing.
      for (let index = 0; index < 5; index++) relay.kick();
      const more = await enqueue(publisher, suffix, 3, 10);
      relay.kick();
      relay.kick();
      await waitFor(async () => (await unpublishedCount(publisher)) === 0, {
        description: 'the new rows published',
      });
      expect((await storedOn(suffix)).map((event) => event.msgId)).toEqual([...ids, ...more]);

      // A relay that crashed after publishing but before marking, and whose claim ran out: the rows go out
      // again and JetStream drops them.
      await harness.db.kysely
        .updateTable('Outbox')
        .set({ publishedAt: null, claimedUntil: new Date(0) })
        .where('id', 'in', ids.slice(5))
        .execute();
      relay.kick();
      await waitFor(async () => (await unpublishedCount(publisher)) === 0, {
        description: 'the rows marked again',
      });
      expect((await storedOn(suffix)).map((event) => event.msgId)).toEqual([...ids, ...more]);
      expect(await unpublishedCount('someone-else')).toBe(2);
    } finally {
      await relay.stop();
    }
  });

  it('records a failed publish, keeps order, and recovers when the stream is back', async () => {
    const publisher = 'relay-recover';
    const suffix = 'sandbox.relay-recover.v1';
    const relay = relayFor(publisher, 200);
    const first = await enqueue(publisher, suffix, 2);
    relay.start();
    try {
      await waitFor(async () => (await unpublishedCount(publisher)) === 0, {
        description: 'the first rows published',
      });
      expect((await storedOn(suffix)).map((event) => event.msgId)).toEqual(first);

      // The stream disappears (an operator deleted it, or JetStream lost it): publishing fails.
      await harness.bus.jsm.streams.delete(SANDBOX_STREAM());
      const second = await enqueue(publisher, suffix, 5, 2);
      relay.kick();
      const failed = await waitFor(
        async () => {
          const row = await outboxRow(harness.db, second[0]!);
          return row !== undefined && row.attempts >= 2 ? row : null;
        },
        { description: 'failed attempts recorded on the oldest row' },
      );
      expect(failed.publishedAt).toBeNull();
      expect(failed.lastError).not.toBeNull();
      // The batch stopped at the first failure: later rows were not tried out of order.
      const later = await harness.db.kysely
        .selectFrom('Outbox')
        .selectAll()
        .where('id', 'in', second.slice(1))
        .execute();
      expect(later).toHaveLength(4);
      expect(later.every((row) => row.attempts === 0 && row.publishedAt === null)).toBe(true);

      // The stream comes back; the next tick publishes everything, in order.
      await ensureStreams(harness.bus.jsm, { prefix: harness.prefix });
      await waitFor(async () => (await unpublishedCount(publisher)) === 0, {
        description: 'recovery',
        timeoutMs: 10_000,
      });
      const stored = await storedOn(suffix);
      // The recreated stream holds only what was published after it came back.
      expect(stored.map((event) => event.msgId)).toEqual(second);
    } finally {
      await relay.stop();
    }
  });

  it('stop() waits for the batch in flight', async () => {
    const publisher = 'relay-stop';
    const suffix = 'sandbox.relay-stop.v1';
    const ids = await enqueue(publisher, suffix, 3);
    const relay = relayFor(publisher, 60_000, 100);
    relay.start();
    await relay.stop();
    // start() began a batch; stop() returned only after it was published and marked.
    expect(await unpublishedCount(publisher)).toBe(0);
    expect((await storedOn(suffix)).map((event) => event.msgId)).toEqual(ids);
    // Stopped: kicks do nothing.
    await enqueue(publisher, suffix, 1, 3);
    relay.kick();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await unpublishedCount(publisher)).toBe(1);
  });
});
