import { createHash, randomBytes } from 'node:crypto';
import { createDb, insertApiToken, type Db } from '@tandem/db';

/** Options of {@link createTestToken}. */
export interface TestTokenOptions {
  role: 'submitter' | 'approver' | 'admin';
  /** Default `test-<role>`. */
  name?: string;
  /** Agents a submitter token may submit for (`*`: any). */
  agents?: string[];
  /** Approver groups. */
  groups?: string[];
  /** Insert it already revoked. */
  revoked?: boolean;
}

/**
 * Stores an ApiToken in a (migrated) test database, through the table's one writer (`insertApiToken` of
 * @tandem/db), and returns the token and its id. The row is what Tandem stores: the sha256 hex of `tdm_` +
 * 32 random bytes (base64url), never the token itself. `database` is a URL (a connection for this call)
 * or a connected `Db`.
 */
export async function createTestToken(
  database: string | Pick<Db, 'kysely'>,
  options: TestTokenOptions,
): Promise<{ token: string; id: string }> {
  const token = `tdm_${randomBytes(32).toString('base64url')}`;
  const store = async (db: Pick<Db, 'kysely'>) =>
    insertApiToken(db, {
      name: options.name ?? `test-${options.role}`,
      tokenHash: createHash('sha256').update(token, 'utf8').digest('hex'),
      role: options.role,
      agents: options.agents ?? [],
      groups: options.groups ?? [],
      createdBy: 'test',
      revoked: options.revoked ?? false,
    });
  if (typeof database !== 'string') return { token, id: (await store(database)).id };
  const db = createDb({ url: database, poolMax: 1 });
  try {
    return { token, id: (await store(db)).id };
  } finally {
    await db.close();
  }
}
