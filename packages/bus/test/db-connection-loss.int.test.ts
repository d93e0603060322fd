import { ErrorCodes, StepFinished } from '@tandem/contracts';
import { sqlTransaction } from '@tandem/db';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, stepFinished, sleep, type Harness } from './harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

describe('a handler whose database connection dies', () => {
  it('fails retryably as DB.CONNECTION_LOST, is redelivered, and succeeds on the next delivery', async () => {
    const suffix = 'step.db-lost.v1';
    const deliveries: Array<{ count: number; error: string | null }> = [];
    const consumer = await harness.bus.consume({
      durable: 'db-lost',
      subject: suffix,
      schema: StepFinished.envelope,
      messageId: (message) => message.id,
      nakDelayMs: () => 100,
      handle: async (_message, context) => {
        try {
          await sqlTransaction(harness.db, async (sql) => {
            const pid = (await sql.query('SELECT pg_backend_pid() AS pid')).rows[0]?.['pid'];
            // The first delivery loses its connection mid-transaction (what a Postgres restart does).
            if (context.deliveryCount === 1) {
              await harness.db.pool.query('SELECT pg_terminate_backend($1::int)', [pid]);
              await sleep(200);
            }
            await sql.query('SELECT 1');
          });
          deliveries.push({ count: context.deliveryCount, error: null });
        } catch (error) {
          const code =
            typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '?';
          deliveries.push({ count: context.deliveryCount, error: code });
          throw error;
        }
      },
    });
    try {
      const envelope = stepFinished();
      await harness.bus.publish(harness.bus.subject(suffix), envelope, { msgId: envelope.id });
      await waitFor(() => deliveries.some((delivery) => delivery.error === null), {
        timeoutMs: 15_000,
        description: 'a successful delivery',
      });
    } finally {
      await consumer.stop();
    }
    expect(deliveries).toEqual([
      { count: 1, error: ErrorCodes.DB_CONNECTION_LOST },
      { count: 2, error: null },
    ]);
    expect(harness.deadLetters).toEqual([]);
  });
});
