import type { TokenRole } from '@tandem/contracts';
import {
  ADMIN_TOKENS_LOCK,
  countActiveAdminTokens,
  findApiTokenByHash,
  insertApiToken as insertApiTokenRow,
  lockAdminTokens,
  type Tx,
} from '@tandem/db';
import { generateApiToken, hashApiToken } from './auth.js';

// The rules of `ApiToken` that more than the approval service's API need: the first admin token (the
// approval service at start, and `pnpm start` before any service runs) and the stored form of a token.
// One place, so the stored form, the lock and the bootstrap rules cannot drift apart; the rows are
// written by packages/db's tables/api-token.ts, the table's one writer.

/** Name of the admin token made at install. */
export const BOOTSTRAP_ADMIN_NAME = 'bootstrap-admin';

/** The advisory lock on the set of admin tokens (bootstrap and revoke take it). */
export { ADMIN_TOKENS_LOCK, lockAdminTokens };

/** A TANDEM_ADMIN_TOKEN value: long enough to be unguessable, and sendable as `Bearer <token>`. */
const ADMIN_TOKEN_VALUE = /^\S{32,1024}$/;

/** Stores a token (its hash only) in the caller's transaction; returns the row id. */
export async function insertApiToken(
  tx: Tx,
  values: {
    token: string;
    name: string;
    role: TokenRole;
    agents: readonly string[];
    groups: readonly string[];
    createdBy: string | null;
  },
): Promise<string> {
  const row = await insertApiTokenRow(tx, {
    name: values.name,
    tokenHash: hashApiToken(values.token),
    role: values.role,
    agents: values.agents,
    groups: values.groups,
    createdBy: values.createdBy,
  });
  return row.id;
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
  tx: Tx,
  token: string | undefined,
  /** Runs in the same transaction after a token was created (e.g. the approval service's audit row). */
  onCreated: (created: { tokenId: string; createdBy: string }) => Promise<void> = async () => undefined,
): Promise<AdminTokenState> {
  if (token !== undefined && !ADMIN_TOKEN_VALUE.test(token)) {
    throw new Error(
      'TANDEM_ADMIN_TOKEN must be at least 32 characters without spaces (e.g. `openssl rand -base64 32`); unset it to have one generated',
    );
  }
  await lockAdminTokens(tx);
  if (token !== undefined) {
    const row = await findApiTokenByHash(tx, hashApiToken(token));
    if (row !== null) {
      const id = row.id;
      if (row.revokedAt !== null) {
        throw new Error(
          `TANDEM_ADMIN_TOKEN is token ${id}, which was revoked; a revoked token is never revived: set a new value or unset it`,
        );
      }
      if (row.role !== 'admin') {
        throw new Error(`TANDEM_ADMIN_TOKEN is the value of ${row.role} token ${id}, not an admin token`);
      }
      return { kind: 'from-env', created: false };
    }
    const createdBy = 'bootstrap:TANDEM_ADMIN_TOKEN';
    const tokenId = await insertApiToken(tx, {
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
  const count = await countActiveAdminTokens(tx);
  if (count > 0) return { kind: 'exists', count };
  const generated = generateApiToken();
  const tokenId = await insertApiToken(tx, {
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
