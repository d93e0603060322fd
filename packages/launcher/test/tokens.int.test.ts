import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, migrate, type Db } from '@tandem/db';
import { createTestToken, getFreePort } from '@tandem/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/embedded-postgres.js';
import { DEMO_TOKEN_NAME, createDemoToken, ensureAdminToken } from '../src/tokens.js';

// Against the embedded PGlite, as `pnpm start` runs them on a fresh data directory.
describe("the launcher's admin and demo tokens", () => {
  let dataDir: string;
  let embedded: EmbeddedPostgres;
  let db: Db;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tandem-tokens-test-'));
    embedded = await startEmbeddedPostgres({ dataDir: join(dataDir, 'pg'), port: await getFreePort() });
    await migrate({ url: embedded.url });
    // One session behind PGlite's wire server: statements are not named (as the launcher runs it).
    db = createDb({ url: embedded.url, poolMax: 1, preparedStatements: false });
  }, 120_000);

  afterAll(async () => {
    await db?.close();
    await embedded?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await db.kysely.deleteFrom('ApiToken').execute();
  });

  const hash = (token: string) => createHash('sha256').update(token).digest('hex');
  const rows = () =>
    db.kysely
      .selectFrom('ApiToken')
      .select(['name', 'role', 'tokenHash', 'agentIds', 'createdBy', 'revokedAt'])
      .orderBy('createdAt')
      .orderBy('id')
      .execute();

  it('generates the first admin token once, then only says that one exists', async () => {
    const first = await ensureAdminToken(embedded.url);
    if (first.kind !== 'generated') throw new Error(`expected a generated token, got ${first.kind}`);
    expect(first.token).toMatch(/^tdm_[A-Za-z0-9_-]{43}$/);
    expect(await rows()).toEqual([
      {
        name: 'bootstrap-admin',
        role: 'admin',
        tokenHash: hash(first.token),
        agentIds: [],
        createdBy: 'bootstrap',
        revokedAt: null,
      },
    ]);
    expect(await ensureAdminToken(embedded.url)).toEqual({ kind: 'exists', count: 1 });
    expect(await rows()).toHaveLength(1);
  });

  it('generates a new admin token when every admin token was revoked', async () => {
    await createTestToken(db, { role: 'admin', revoked: true });
    expect((await ensureAdminToken(embedded.url)).kind).toBe('generated');
  });

  it('stores TANDEM_ADMIN_TOKEN once, and refuses a short, revoked or non-admin value', async () => {
    const value = 'x'.repeat(40);
    expect(await ensureAdminToken(embedded.url, { token: value })).toEqual({
      kind: 'from-env',
      created: true,
    });
    expect(await ensureAdminToken(embedded.url, { token: value })).toEqual({
      kind: 'from-env',
      created: false,
    });
    expect((await rows()).map((row) => [row.role, row.tokenHash])).toEqual([['admin', hash(value)]]);
    await expect(ensureAdminToken(embedded.url, { token: 'too-short' })).rejects.toThrow(/at least 32/);
    const revoked = await createTestToken(db, { role: 'admin', revoked: true });
    await expect(ensureAdminToken(embedded.url, { token: revoked.token })).rejects.toThrow(/never revived/);
    const submitter = await createTestToken(db, { role: 'submitter' });
    await expect(ensureAdminToken(embedded.url, { token: submitter.token })).rejects.toThrow(
      /not an admin token/,
    );
    expect(await rows()).toHaveLength(3);
  });

  it('makes a fresh demo submitter token on every start and revokes the previous one', async () => {
    const mine = await createTestToken(db, { role: 'submitter', name: DEMO_TOKEN_NAME });
    const first = await createDemoToken(embedded.url);
    const second = await createDemoToken(embedded.url);
    expect(second).not.toBe(first);
    const demo = (await rows()).filter((row) => row.createdBy === 'launcher');
    expect(demo).toHaveLength(2);
    expect(demo.find((row) => row.tokenHash === hash(first))?.revokedAt).not.toBeNull();
    expect(demo.find((row) => row.tokenHash === hash(second))).toMatchObject({
      name: DEMO_TOKEN_NAME,
      role: 'submitter',
      agentIds: ['*'],
      revokedAt: null,
    });
    // A token someone else named `demo` is not the launcher's to revoke.
    const other = await db.kysely
      .selectFrom('ApiToken')
      .select('revokedAt')
      .where('id', '=', mine.id)
      .execute();
    expect(other[0]?.revokedAt).toBeNull();
  });
});
