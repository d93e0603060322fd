import { createDb, revokeApiTokensNamed, transaction, type Tx } from '@tandem/db';
import {
  ensureBootstrapAdmin,
  generateApiToken,
  insertApiToken,
  lockAdminTokens,
  type AdminTokenState,
} from '@tandem/service-kit';

// The launcher writes ApiToken rows before any service runs, so the first admin token exists (and is
// printed) before the approval API takes requests, and the demo has a token of its own. The rules and the
// stored form are those of @tandem/service-kit, which the approval service uses too, and the rows are
// written by packages/db's one ApiToken module.

/** Name of the submitter token the demo submits with; replaced on every start. */
export const DEMO_TOKEN_NAME = 'demo';
const CREATED_BY = 'launcher';

export type { AdminTokenState };

/** One transaction on a short-lived connection to `databaseUrl` (the services are not running yet). */
async function inTransaction<T>(databaseUrl: string, work: (tx: Tx) => Promise<T>): Promise<T> {
  // One-off statements, possibly on the embedded server (whose sessions may be shared): none named.
  const db = createDb({ url: databaseUrl, poolMax: 1, preparedStatements: false });
  try {
    return await transaction(db, work);
  } finally {
    await db.close().catch(() => undefined);
  }
}

/**
 * The first admin token, like the approval service's bootstrap (the same function): with `token`
 * (TANDEM_ADMIN_TOKEN) it makes sure that value is a non-revoked admin token (refusing a short value, a
 * revoked one or another role's); without, it creates one when no non-revoked admin token exists and
 * returns it to be printed once.
 */
export async function ensureAdminToken(
  databaseUrl: string,
  options: { token?: string | undefined } = {},
): Promise<AdminTokenState> {
  return inTransaction(databaseUrl, (tx) => ensureBootstrapAdmin(tx, options.token));
}

/**
 * A fresh submitter token for the demo (any agent), revoking the demo tokens of earlier starts: the demo
 * never needs the admin token, and a demo token lives only until the next start.
 */
export async function createDemoToken(databaseUrl: string): Promise<string> {
  return inTransaction(databaseUrl, async (tx) => {
    await lockAdminTokens(tx);
    await revokeApiTokensNamed(tx, { name: DEMO_TOKEN_NAME, createdBy: CREATED_BY });
    const token = generateApiToken();
    await insertApiToken(tx, {
      token,
      name: DEMO_TOKEN_NAME,
      role: 'submitter',
      agents: ['*'],
      groups: [],
      createdBy: CREATED_BY,
    });
    return token;
  });
}
