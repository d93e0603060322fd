import { createHash, randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';

/** Something that runs a parameterised query: a `pg.Pool`, a `pg.Client`, or `Db.pool` of @tandem/db. */
export interface Queryable {
  query(text: string, values: unknown[]): Promise<unknown>;
}

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
 * Inserts an ApiToken row into a (migrated) test database and returns the token and its id. The row is
 * what Tandem stores: the sha256 hex of `tdm_` + 32 random bytes (base64url), never the token itself.
 */
export async function createTestToken(
  database: string | Queryable,
  options: TestTokenOptions,
): Promise<{ token: string; id: string }> {
  const token = `tdm_${randomBytes(32).toString('base64url')}`;
  const id = randomUUID();
  const insert = (target: Queryable) =>
    target.query(
      `INSERT INTO "ApiToken" ("id", "name", "tokenHash", "role", "agentIds", "groups", "createdBy", "createdAt", "revokedAt")
       VALUES ($1::uuid, $2, $3, $4, $5::text[], $6::text[], 'test',
               (now() AT TIME ZONE 'UTC'), CASE WHEN $7::boolean THEN (now() AT TIME ZONE 'UTC') END)`,
      [
        id,
        options.name ?? `test-${options.role}`,
        createHash('sha256').update(token, 'utf8').digest('hex'),
        options.role,
        options.agents ?? [],
        options.groups ?? [],
        options.revoked ?? false,
      ],
    );
  if (typeof database !== 'string') {
    await insert(database);
    return { token, id };
  }
  const client = new pg.Client({ connectionString: database, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await insert(client);
  } finally {
    await client.end().catch(() => undefined);
  }
  return { token, id };
}
