import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, defaultMigrationsDir, markProcessedPrisma, migrate, poolSql, sqlTransaction } from '@tandem/db';
import { getFreePort } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/embedded-postgres.js';

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

  it('takes the migrations, and several Prisma clients with pools work on it at once', async () => {
    const repository = (await readdir(defaultMigrationsDir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(repository[0]).toBe('20261126000000_init');
    expect((await migrate({ url: embedded.url })).applied).toEqual(repository);
    expect((await migrate({ url: embedded.url })).applied).toEqual([]);
    const clients = [
      createDb({ url: embedded.url, poolMax: 3 }),
      createDb({ url: embedded.url, poolMax: 3 }),
    ];
    try {
      const ids = Array.from({ length: 20 }, () => randomUUID());
      // Interactive transactions from two clients (two "services") interleave on one PGlite session.
      await Promise.all(
        ids.map((id, index) =>
          clients[index % 2]!.prisma.$transaction(async (tx) => {
            expect(await markProcessedPrisma(tx, 'embedded-test', id)).toBe(true);
            expect(await markProcessedPrisma(tx, 'embedded-test', id)).toBe(false);
          }),
        ),
      );
      const count = await clients[0]!.prisma.processedMessage.count({ where: { consumer: 'embedded-test' } });
      expect(count).toBe(20);
      const [zone] = await clients[1]!.prisma.$queryRaw<Array<{ TimeZone: string }>>`SHOW TimeZone`;
      expect(zone?.TimeZone).toBe('UTC');
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  it('runs plain SQL from several pools: statement names clash in the one session, so they are dropped', async () => {
    // Without the launcher's setting: the first clash turns naming off for that pool and the statement
    // is retried unnamed, so nothing fails.
    const pools = [createDb({ url: embedded.url, poolMax: 2 }), createDb({ url: embedded.url, poolMax: 2 })];
    try {
      const text = 'SELECT count(*)::int AS "n" FROM "ProcessedMessage" WHERE "consumer" = $1';
      for (let round = 0; round < 3; round += 1) {
        for (const pool of pools) {
          const result = await poolSql(pool).query(text, ['embedded-test']);
          expect(result.rows[0]?.['n']).toBe(20);
        }
      }
      // With the setting, statements are never named.
      const unnamed = createDb({ url: embedded.url, poolMax: 2, preparedStatements: false });
      try {
        await sqlTransaction(unnamed, async (sql) => {
          expect((await sql.query(text, ['embedded-test'])).rows[0]?.['n']).toBe(20);
        });
      } finally {
        await unnamed.close();
      }
    } finally {
      await Promise.all(pools.map((pool) => pool.close()));
    }
  });
});
