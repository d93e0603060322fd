import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { ApiToken as ApiTokenTable } from '../generated/kysely.js';
import { utcNow, queryable, type DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';

// The only module that writes "ApiToken": the approval service's token API and CLI, its bootstrap of the
// first admin token, and the launcher's tokens before any service runs all store tokens here, in one
// form (the token's hash only) under one lock (locks.ts lockAdminTokens). Hashing and the rules about
// which tokens may exist stay with their callers (@tandem/service-kit).

/** A token's role: submitter | approver | admin. */
export type ApiTokenRole = Selectable<ApiTokenTable>['role'];

/** A stored token, never its secret. */
export type StoredApiToken = Pick<
  Selectable<ApiTokenTable>,
  'id' | 'name' | 'tokenHash' | 'role' | 'agentIds' | 'groups' | 'createdBy' | 'createdAt' | 'revokedAt'
>;

const COLUMNS = [
  'id',
  'name',
  'tokenHash',
  'role',
  'agentIds',
  'groups',
  'createdBy',
  'createdAt',
  'revokedAt',
] as const;

/** A token to store. */
export interface NewApiToken {
  /** Default: a new UUID. */
  id?: string;
  name: string;
  /** sha256 hex of the token (service-kit's `hashApiToken`). */
  tokenHash: string;
  role: ApiTokenRole;
  agents: readonly string[];
  groups: readonly string[];
  createdBy: string | null;
  /** Store it already revoked (tests). */
  revoked?: boolean;
}

/** Stores a token in the caller's transaction (or as one statement); returns the row. */
export async function insertApiToken(source: Tx | DbOrTx, token: NewApiToken): Promise<StoredApiToken> {
  return queryable(source)
    .insertInto('ApiToken')
    .values({
      id: token.id ?? randomUUID(),
      name: token.name,
      tokenHash: token.tokenHash,
      role: token.role,
      agentIds: [...token.agents],
      groups: [...token.groups],
      createdBy: token.createdBy,
      createdAt: utcNow(),
      revokedAt: token.revoked === true ? utcNow() : null,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
}

/** A token by id, or null. */
export async function findApiToken(source: DbOrTx, id: string): Promise<StoredApiToken | null> {
  const row = await queryable(source)
    .selectFrom('ApiToken')
    .select(COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
  return row ?? null;
}

/** A token by its hash, revoked or not, or null. */
export async function findApiTokenByHash(source: DbOrTx, tokenHash: string): Promise<StoredApiToken | null> {
  const row = await queryable(source)
    .selectFrom('ApiToken')
    .select(COLUMNS)
    .where('tokenHash', '=', tokenHash)
    .executeTakeFirst();
  return row ?? null;
}

/** A non-revoked token by its hash (one lookup on the unique index: what auth does per request), or null. */
export async function findActiveApiTokenByHash(
  source: DbOrTx,
  tokenHash: string,
): Promise<StoredApiToken | null> {
  const row = await queryable(source)
    .selectFrom('ApiToken')
    .select(COLUMNS)
    .where('tokenHash', '=', tokenHash)
    .where('revokedAt', 'is', null)
    .executeTakeFirst();
  return row ?? null;
}

/** Every token, newest first (then by id); only the non-revoked ones with `activeOnly`. */
export async function listApiTokens(
  source: DbOrTx,
  options: { activeOnly?: boolean } = {},
): Promise<StoredApiToken[]> {
  let query = queryable(source).selectFrom('ApiToken').select(COLUMNS);
  if (options.activeOnly === true) query = query.where('revokedAt', 'is', null);
  return query.orderBy('createdAt', 'desc').orderBy('id', 'asc').execute();
}

/** How many non-revoked admin tokens exist (besides `except`, when given). */
export async function countActiveAdminTokens(
  source: DbOrTx,
  options: { except?: string } = {},
): Promise<number> {
  let query = queryable(source)
    .selectFrom('ApiToken')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('role', '=', 'admin')
    .where('revokedAt', 'is', null);
  if (options.except !== undefined) query = query.where('id', '!=', options.except);
  const row = await query.executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Revokes a token if it is not revoked yet; returns the row as stored afterwards, or null when unknown. */
export async function revokeApiToken(tx: Tx, id: string): Promise<StoredApiToken | null> {
  await tx
    .updateTable('ApiToken')
    .set({ revokedAt: new Date() })
    .where('id', '=', id)
    .where('revokedAt', 'is', null)
    .execute();
  return findApiToken(tx, id);
}

/** Revokes every non-revoked token of one name made by one creator (the launcher's demo tokens). */
export async function revokeApiTokensNamed(
  tx: Tx,
  input: { name: string; createdBy: string },
): Promise<number> {
  const result = await tx
    .updateTable('ApiToken')
    .set({ revokedAt: utcNow() })
    .where('name', '=', input.name)
    .where('createdBy', '=', input.createdBy)
    .where('revokedAt', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
