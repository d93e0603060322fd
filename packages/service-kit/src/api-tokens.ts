import { randomUUID } from 'node:crypto';
import type { TokenRole } from '@tandem/contracts';
import { UTC_NOW, type Sql } from '@tandem/db';
import { generateApiToken, hashApiToken } from './auth.js';

// The writes of `ApiToken` that more than the approval service's API need: the first admin token (the
// approval service at start, and `pnpm start` before any service runs) and plain inserts. One place, so
// the stored form, the lock and the bootstrap rules cannot drift apart.

/** Name of the admin token made at install. */
export const BOOTSTRAP_ADMIN_NAME = 'bootstrap-admin';

/** The advisory lock on the set of admin tokens (bootstrap and revoke take it). */
export const ADMIN_TOKENS_LOCK = 'approval:tokens:admins';

/** A TANDEM_ADMIN_TOKEN value: long enough to be unguessable, and sendable as `Bearer <token>`. */
const ADMIN_TOKEN_VALUE = /^\S{32,1024}$/;

/** Takes {@link ADMIN_TOKENS_LOCK} until the transaction ends. */
export async function lockAdminTokens(sql: Sql): Promise<void> {
  await sql.query(`SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))`, [ADMIN_TOKENS_LOCK]);
}

/** Stores a token (its hash only) in the caller's transaction; returns the row id. */
export async function insertApiToken(
  sql: Sql,
  values: {
    token: string;
    name: string;
    role: TokenRole;
    agents: readonly string[];
    groups: readonly string[];
    createdBy: string | null;
  },
): Promise<string> {
  const id = randomUUID();
  await sql.query(
    `INSERT INTO "ApiToken" ("id", "name", "tokenHash", "role", "agentIds", "groups", "createdBy", "createdAt")
     VALUES ($1::uuid, $2, $3, $4, $5::text[], $6::text[], $7, ${UTC_NOW})`,
    [
      id,
      values.name,
      hashApiToken(values.token),
      values.role,
      [...values.agents],
      [...values.groups],
      values.createdBy,
    ],
  );
  return id;
}

/** What {@link ensureBootstrapAdmin} found or did. */
export type AdminTokenState =
  | { kind: 'generated'; token: string }
  | { kind: 'from-env'; created: boolean }
  | { kind: 'exists'; count: number };

/**
 * The first admin token, in the caller's transaction (under {@link ADMIN_TOKENS_LOCK}): with `token`
 * (TANDEM_ADMIN_TOKEN) it makes sure that value is a non-revoked admin token — a short value, a revoked
 * token (never revived) or another role's token is refused —; without, it creates one when no
 * non-revoked admin token exists and returns it, to be printed once.
 */
export async function ensureBootstrapAdmin(
  sql: Sql,
  token: string | undefined,
  /** Runs in the same transaction after a token was created (e.g. the approval service's audit row). */
  onCreated: (created: { tokenId: string; createdBy: string }) => Promise<void> = async () => undefined,
): Promise<AdminTokenState> {
  if (token !== undefined && !ADMIN_TOKEN_VALUE.test(token)) {
    throw new Error(
      'TANDEM_ADMIN_TOKEN must be at least 32 characters without spaces (e.g. `openssl rand -base64 32`); unset it to have one generated',
    );
  }
  await lockAdminTokens(sql);
  if (token !== undefined) {
    const found = await sql.query(
      `SELECT "id"::text AS "id", "role", "revokedAt" FROM "ApiToken" WHERE "tokenHash" = $1`,
      [hashApiToken(token)],
    );
    const row = found.rows[0];
    if (row !== undefined) {
      const id = String(row['id']);
      if (row['revokedAt'] !== null) {
        throw new Error(
          `TANDEM_ADMIN_TOKEN is token ${id}, which was revoked; a revoked token is never revived: set a new value or unset it`,
        );
      }
      if (row['role'] !== 'admin') {
        throw new Error(
          `TANDEM_ADMIN_TOKEN is the value of ${String(row['role'])} token ${id}, not an admin token`,
        );
      }
      return { kind: 'from-env', created: false };
    }
    const createdBy = 'bootstrap:TANDEM_ADMIN_TOKEN';
    const tokenId = await insertApiToken(sql, {
      token,
      name: BOOTSTRAP_ADMIN_NAME,
      role: 'admin',
      agents: [],
      groups: [],
      createdBy,
    });
    await onCreated({ tokenId, createdBy });
    return { kind: 'from-env', created: true };
  }
  const admins = await sql.query(
    `SELECT count(*)::int AS "count" FROM "ApiToken" WHERE "role" = 'admin' AND "revokedAt" IS NULL`,
    [],
  );
  const count = Number(admins.rows[0]?.['count'] ?? 0);
  if (count > 0) return { kind: 'exists', count };
  const generated = generateApiToken();
  const tokenId = await insertApiToken(sql, {
    token: generated,
    name: BOOTSTRAP_ADMIN_NAME,
    role: 'admin',
    agents: [],
    groups: [],
    createdBy: 'bootstrap',
  });
  await onCreated({ tokenId, createdBy: 'bootstrap' });
  return { kind: 'generated', token: generated };
}
