import { randomUUID } from 'node:crypto';
import { createDb, enqueueOutbox, transaction, type Db } from '@tandem/db';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboxRelay, type Bus, type OutboxRelay } from '../src/index.js';
import { createHarness, enqueueOn, outboxRow, sleep, type Harness } from './harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

/** One replica of a service: its own pool, its own NATS connection and its relay, wired as service-kit does. */
interface Replica {
  db: Db;
  relay: OutboxRelay;
}

function startReplica(db: Db, bus: Bus, publisher: string): Replica {
  const relay = createOutboxRelay({
    db,
    bus,
    publisher,
    log: harness.log,
    // Polls as often as it can: the poll and the hand-over race on every committed row.
    pollIntervalMs: 2,
    batchSize: 8,
  });
  // start() makes the relay the hand-over of the pool's typed transactions, as in a service.
  relay.start();
  return { db, relay };
}

/** Counts every message a plain (core NATS) subscriber sees on `subject`, by Nats-Msg-Id. */
function countPlain(subject: string): { seen: Map<string, number>; stop: () => void } {
  const seen = new Map<string, number>();
  const subscription = harness.bus.nc.subscribe(subject, {
    callback: (error, message) => {
      if (error !== null) return;
      const id = message.headers?.get('Nats-Msg-Id') ?? '';
      seen.set(id, (seen.get(id) ?? 0) + 1);
    },
  });
  return { seen, stop: () => subscription.unsubscribe() };
}

/**
 * `transactions` typed transactions (`transaction` and `enqueueOutbox`) per worker, `workers` at once, two
 * rows each; returns the ids.
 */
async function enqueueConcurrently(
  db: Db,
  publisher: string,
  subject: string,
  workers: number,
  transactions: number,
): Promise<string[]> {
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (let index = 0; index < transactions; index++) {
        const batch = [randomUUID(), randomUUID()];
        const messages = batch.map((id) => ({ id, publisher, subject, payload: { worker, index } }));
        await transaction(db, (tx) => enqueueOutbox(tx, messages));
        ids.push(...batch);
      }
    }),
  );
  return ids;
}

function duplicatesOf(seen: Map<string, number>): string[] {
  return [...seen].filter(([, count]) => count > 1).map(([id, count]) => `${id} x${count}`);
}

describe('outbox relay publishes each row once', () => {
  it('a core NATS subscriber sees each row once: hand-over after COMMIT of typed transactions vs poll, two relays of one publisher', async () => {
    const publisher = 'relay-once';
    const subject = harness.bus.subject('sandbox.relay-once.v1');
    const plain = countPlain(subject);
    const secondDb = createDb({ url: harness.database.url, poolMax: 4 });
    const secondBus = await harness.connectAnother();
    const first = startReplica(harness.db, harness.bus, publisher);
    const second = startReplica(secondDb, secondBus, publisher);
    try {
      // Each replica's rows are handed to its own relay after COMMIT, while both relays poll; rows written
      // meanwhile through a pool without a relay (another process's) are unclaimed, for the polls to race
      // for, as are hand-over rows whose relay's claim the polls must respect.
      const unhanded = Array.from({ length: 60 }, () => randomUUID());
      const [a, b] = await Promise.all([
        enqueueConcurrently(first.db, publisher, subject, 9, 40),
        enqueueConcurrently(second.db, publisher, subject, 9, 40),
        (async () => {
          for (let start = 0; start < unhanded.length; start += 6) {
            await enqueueOn(
              harness.outsideDb,
              unhanded.slice(start, start + 6).map((id, n) => ({ id, publisher, subject, payload: { n } })),
            );
          }
        })(),
      ]);
      const all = [...a, ...b, ...unhanded];
      await waitFor(async () => plain.seen.size === all.length, {
        description: 'every row seen by the plain subscriber',
        timeoutMs: 20_000,
      });
      // Time for a late second publish to arrive.
      await sleep(500);
      expect(duplicatesOf(plain.seen)).toEqual([]);
      expect([...plain.seen.keys()].sort()).toEqual([...all].sort());
    } finally {
      plain.stop();
      await first.relay.stop();
      await second.relay.stop();
      await secondDb.close();
    }
  });
});

describe('outbox claims', () => {
  it('a claim whose holder died is taken over once its lease ran out, and not before', async () => {
    const publisher = 'relay-takeover';
    const subject = harness.bus.subject('sandbox.relay-takeover.v1');
    const id = randomUUID();
    await enqueueOn(harness.outsideDb, { id, publisher, subject, payload: { n: 1 } });
    // Claimed by a relay that died right after claiming: its lease runs for 1.5 s more (this host's clock is
    // the database's; timestamps are UTC wall-clock time, as the pool reads and writes them).
    await harness.db.kysely
      .updateTable('Outbox')
      .set({ claimedBy: 'dead-relay', claimedUntil: new Date(Date.now() + 1_500) })
      .where('id', '=', id)
      .execute();
    const plain = countPlain(subject);
    const relay = createOutboxRelay({
      db: harness.db,
      bus: harness.bus,
      publisher,
      log: harness.log,
      pollIntervalMs: 50,
    });
    const started = Date.now();
    relay.start();
    try {
      await waitFor(async () => plain.seen.size === 1, {
        description: 'the row taken over',
        timeoutMs: 10_000,
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
      const row = await outboxRow(harness.db, id);
      expect(row?.claimedBy).toBe(relay.holder);
      expect(row?.publishedAt).not.toBeNull();
    } finally {
      plain.stop();
      await relay.stop();
    }
  });
});
