import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, defaultMigrationsDir, markProcessed, migrate, transaction, type DbOrTx } from '@tandem/db';
import { getFreePort } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/embedded-postgres.js';

/** The typed count of a consumer's processed messages, an int as Postgres computes it (`count(*)::int`). */
async function processedCount(db: DbOrTx, consumer: string): Promise<number | undefined> {
  const kysely = 'kysely' in db ? db.kysely : db;
  const row = await kysely
    .selectFrom('ProcessedMessage')
    .select((eb) => eb.cast<number>(eb.fn.countAll(), 'integer').as('n'))
    .where('consumer', '=', consumer)
    .executeTakeFirst();
  return row?.n;
}

describe('the embedded Postgres (PGlite behind the wire server)', () => {
  let dataDir: string;
  let embedded: EmbeddedPostgres;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tandem-pglite-test-'));
    embedded = await startEmbeddedPostgres({ dataDir: join(dataDir, 'pg'), port: await getFreePort() });
  });

  afterAll(async () => {
    await embedded?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('takes the migrations, and several typed clients with pools work on it at once', async () => {
    const repository = (await readdir(defaultMigrationsDir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(repository[0]).toBe('20261126000000_init');
    expect((await migrate({ url: embedded.url })).applied).toEqual(repository);
    expect((await migrate({ url: embedded.url })).applied).toEqual([]);
    // As `pnpm start` runs the services on it (TANDEM_DB_PREPARED_STATEMENTS=false): inside a transaction
    // a statement-name clash cannot be retried in place (see the next test for the one outside).
    const clients = [
      createDb({ url: embedded.url, poolMax: 3, preparedStatements: false }),
      createDb({ url: embedded.url, poolMax: 3, preparedStatements: false }),
    ];
    try {
      const ids = Array.from({ length: 20 }, () => randomUUID());
      // Interactive transactions from two clients (two "services") interleave on one PGlite session.
      await Promise.all(
        ids.map((id, index) =>
          transaction(clients[index % 2]!, async (tx) => {
            expect(await markProcessed(tx, 'embedded-test', id)).toBe(true);
            expect(await markProcessed(tx, 'embedded-test', id)).toBe(false);
          }),
        ),
      );
      expect(await processedCount(clients[0]!, 'embedded-test')).toBe(20);
      // The pool's sessions run in UTC (its startup option), whatever the server's default is.
      const zone = await clients[1]!.pool.query<{ TimeZone: string }>('SHOW TimeZone');
      expect(zone.rows[0]?.TimeZone).toBe('UTC');
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  it('runs typed queries from several pools: statement names clash in the one session, so they are dropped', async () => {
    // Without the launcher's setting: the first clash turns naming off for that pool and the statement
    // is retried unnamed, so nothing fails. Every pool sends the same statement text, so the same name.
    const pools = [createDb({ url: embedded.url, poolMax: 2 }), createDb({ url: embedded.url, poolMax: 2 })];
    try {
      for (let round = 0; round < 3; round += 1) {
        for (const pool of pools) {
          expect(await processedCount(pool, 'embedded-test')).toBe(20);
        }
      }
      // With the setting, statements are never named.
      const unnamed = createDb({ url: embedded.url, poolMax: 2, preparedStatements: false });
      try {
        await transaction(unnamed, async (tx) => {
          expect(await processedCount(tx, 'embedded-test')).toBe(20);
        });
      } finally {
        await unnamed.close();
      }
    } finally {
      await Promise.all(pools.map((pool) => pool.close()));
    }
  });
});
