import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { UTC_NOW } from '@tandem/db';
import pg from 'pg';

// The launcher writes ApiToken rows before any service runs, so the first admin token exists (and is
// printed) before the approval API takes requests, and the demo has a token of its own. The stored form
// is the one of `hashApiToken` in @tandem/service-kit (sha256 hex of `tdm_` + 32 random bytes,
// base64url), which the launcher does not depend on; its end-to-end tests fail if the two ever differ.

/** Name of the admin token made at install (as the approval service names it). */
const BOOTSTRAP_ADMIN_NAME = 'bootstrap-admin';
/** Name of the submitter token the demo submits with; replaced on every start. */
export const DEMO_TOKEN_NAME = 'demo';
const CREATED_BY = 'launcher';
/** A TANDEM_ADMIN_TOKEN value: long enough to be unguessable, and sendable as `Bearer <token>`. */
const ADMIN_TOKEN_VALUE = /^\S{32,1024}$/;

function generateToken(): string {
  return `tdm_${randomBytes(32).toString('base64url')}`;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

async function inTransaction<T>(databaseUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('BEGIN');
    // The approval service's lock on the set of admin tokens: a replica bootstrapping at the same time waits.
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('approval:tokens:admins', 0))`);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function insertToken(
  client: pg.Client,
  values: { token: string; name: string; role: 'submitter' | 'admin'; agents: string[]; createdBy: string },
): Promise<string> {
  const id = randomUUID();
  await client.query(
    `INSERT INTO "ApiToken" ("id", "name", "tokenHash", "role", "agentIds", "groups", "createdBy", "createdAt")
     VALUES ($1::uuid, $2, $3, $4, $5::text[], '{}', $6, ${UTC_NOW})`,
    [id, values.name, hashToken(values.token), values.role, values.agents, values.createdBy],
  );
  return id;
}

/** What {@link ensureAdminToken} found or did. */
export type AdminTokenState =
  | { kind: 'generated'; token: string }
  | { kind: 'from-env'; created: boolean }
  | { kind: 'exists'; count: number };

/**
 * The first admin token, like the approval service's bootstrap: with `token` (TANDEM_ADMIN_TOKEN) it makes
 * sure that value is a non-revoked admin token (refusing a short value, a revoked one or another role's);
 * without, it creates one when no non-revoked admin token exists and returns it to be printed once.
 */
export async function ensureAdminToken(
  databaseUrl: string,
  options: { token?: string | undefined } = {},
): Promise<AdminTokenState> {
  const { token } = options;
  if (token !== undefined && !ADMIN_TOKEN_VALUE.test(token)) {
    throw new Error(
      'TANDEM_ADMIN_TOKEN must be at least 32 characters without spaces (e.g. `openssl rand -base64 32`); unset it to have one generated',
    );
  }
  return inTransaction(databaseUrl, async (client): Promise<AdminTokenState> => {
    if (token !== undefined) {
      const found = await client.query(
        `SELECT "id"::text AS "id", "role", "revokedAt" FROM "ApiToken" WHERE "tokenHash" = $1`,
        [hashToken(token)],
      );
      const row = found.rows[0];
      if (row !== undefined) {
        if (row['revokedAt'] !== null)
          throw new Error(
            `TANDEM_ADMIN_TOKEN is token ${String(row['id'])}, which was revoked; a revoked token is never revived: set a new value or unset it`,
          );
        if (row['role'] !== 'admin')
          throw new Error(
            `TANDEM_ADMIN_TOKEN is the value of ${String(row['role'])} token ${String(row['id'])}, not an admin token`,
          );
        return { kind: 'from-env', created: false };
      }
      await insertToken(client, {
        token,
        name: BOOTSTRAP_ADMIN_NAME,
        role: 'admin',
        agents: [],
        createdBy: 'bootstrap:TANDEM_ADMIN_TOKEN',
      });
      return { kind: 'from-env', created: true };
    }
    const admins = await client.query(
      `SELECT count(*)::int AS "count" FROM "ApiToken" WHERE "role" = 'admin' AND "revokedAt" IS NULL`,
    );
    const count = Number(admins.rows[0]?.['count'] ?? 0);
    if (count > 0) return { kind: 'exists', count };
    const generated = generateToken();
    await insertToken(client, {
      token: generated,
      name: BOOTSTRAP_ADMIN_NAME,
      role: 'admin',
      agents: [],
      createdBy: 'bootstrap',
    });
    return { kind: 'generated', token: generated };
  });
}

/**
 * A fresh submitter token for the demo (any agent), revoking the demo tokens of earlier starts: the demo
 * never needs the admin token, and a demo token lives only until the next start.
 */
export async function createDemoToken(databaseUrl: string): Promise<string> {
  return inTransaction(databaseUrl, async (client) => {
    await client.query(
      `UPDATE "ApiToken" SET "revokedAt" = ${UTC_NOW}
        WHERE "name" = $1 AND "createdBy" = $2 AND "revokedAt" IS NULL`,
      [DEMO_TOKEN_NAME, CREATED_BY],
    );
    const token = generateToken();
    await insertToken(client, {
      token,
      name: DEMO_TOKEN_NAME,
      role: 'submitter',
      agents: ['*'],
      createdBy: CREATED_BY,
    });
    return token;
  });
}
