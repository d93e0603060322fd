import { sql } from 'kysely';
import { queryable, type DbOrTx } from '../queryable.js';

// Reads of tables service-kit does not write, for the code every service shares.

/** Answers when the database does (readiness); throws when it cannot be reached. */
export async function pingDatabase(db: DbOrTx): Promise<void> {
  await sql`SELECT 1`.execute(queryable(db));
}

/** The id of the task with this id, or null when there is none. */
export async function taskIdById(db: DbOrTx, taskId: string): Promise<string | null> {
  const row = await queryable(db).selectFrom('Task').select('id').where('id', '=', taskId).executeTakeFirst();
  return row?.id ?? null;
}

/** The id of the task a submitter's request made (its idempotency key: source and external id), or null. */
export async function taskIdByRequest(
  db: DbOrTx,
  request: { source: string; externalId: string },
): Promise<string | null> {
  const row = await queryable(db)
    .selectFrom('Task')
    .select('id')
    .where('source', '=', request.source)
    .where('externalId', '=', request.externalId)
    .executeTakeFirst();
  return row?.id ?? null;
}
