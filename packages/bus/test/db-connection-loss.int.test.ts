import { ErrorCodes, StepFinished } from '@tandem/contracts';
import { transaction } from '@tandem/db';
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
          await transaction(harness.db, async (tx) => {
            await tx.selectFrom('ProcessedMessage').select('messageId').limit(1).execute();
            // The first delivery loses its connection mid-transaction (what a Postgres restart does): the
            // only session of this database idle in a transaction is this one, waiting for its next query.
            if (context.deliveryCount === 1) {
              const killed = await harness.db.pool.query(
                `SELECT pg_terminate_backend("pid") AS "killed" FROM pg_stat_activity
                  WHERE "datname" = current_database() AND "pid" <> pg_backend_pid()
                    AND "state" = 'idle in transaction'`,
              );
              expect(killed.rows).toEqual([{ killed: true }]);
              await sleep(200);
            }
            await tx.selectFrom('ProcessedMessage').select('messageId').limit(1).execute();
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
