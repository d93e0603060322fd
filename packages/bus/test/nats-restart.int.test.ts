import { StepFinished } from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import {
  createTestDatabase,
  createTestPrefix,
  startNatsCluster,
  waitFor,
  type NatsCluster,
  type TestDatabase,
} from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type Bus } from '../src/index.js';
import { stepFinished, testLogger } from './harness.js';

// The consume loop pulls with fetch requests; a nats-server that is killed and restarted (same store)
// must not leave it stuck: messages published after the restart are handled.

let nats: NatsCluster;
let database: TestDatabase;
let db: Db;
let bus: Bus;
const prefix = createTestPrefix();

beforeAll(async () => {
  nats = await startNatsCluster(1);
  database = await createTestDatabase({ migrate: (url) => migrate({ url }).then(() => undefined) });
  db = createDb({ url: database.url, poolMax: 2 });
  bus = await connectBus({
    servers: nats.url,
    prefix,
    name: 'restart-test',
    log: testLogger(),
    db,
    connection: { reconnectTimeWait: 200 },
  });
}, 60_000);

afterAll(async () => {
  await bus?.drain().catch(() => undefined);
  await db?.close();
  await database?.drop();
  await nats?.stop();
});

async function publish(count: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    const envelope = stepFinished();
    await bus.publish(bus.subject('step.restart.v1'), envelope, { msgId: envelope.id });
  }
}

describe('a consumer across a nats-server restart', () => {
  it('handles messages published after the server came back', async () => {
    const handled = new Set<string>();
    const consumer = await bus.consume({
      durable: 'restart',
      subject: 'step.restart.v1',
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      concurrency: 2,
      ackWaitMs: 2_000,
      handle: async (message) => {
        handled.add(message.id);
      },
    });
    try {
      await publish(5);
      await waitFor(() => handled.size >= 5, { timeoutMs: 10_000, description: 'the first five' });
      const [node] = nats.nodes;
      await node?.kill();
      const downAt = Date.now();
      await node?.start();
      await waitFor(
        async () => {
          try {
            await publish(1);
            return true;
          } catch {
            return false;
          }
        },
        { timeoutMs: 30_000, intervalMs: 250, description: 'a publish after the restart' },
      );
      const backAt = Date.now();
      await publish(4);
      await waitFor(() => handled.size >= 10, { timeoutMs: 30_000, description: 'all ten' });
      process.stdout.write(
        `published again ${backAt - downAt} ms after the kill; all handled ${Date.now() - backAt} ms later\n`,
      );
      expect(handled.size).toBe(10);
    } finally {
      await consumer.stop();
    }
  }, 90_000);
});
