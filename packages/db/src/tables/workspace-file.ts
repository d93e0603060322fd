import { prepared } from '../prepared.js';
import { sql } from 'kysely';
import { utcNow, queryable, type DbOrTx } from '../queryable.js';
import type { Tx } from '../transaction.js';

/**
 * The only writer of WorkspaceFile (executor): a task's files, rows in Postgres and never the host
 * filesystem. The caps are the executor's to check (it reads the usage here first).
 */

/** A file's identity in a listing or a sandbox job. */
export interface WorkspaceFileEntry {
  path: string;
  size: number;
  sha256: string;
}

/** One file's bytes; null when the workspace has no file at that path. */
export async function readWorkspaceFile(
  source: DbOrTx,
  taskId: string,
  path: string,
): Promise<{ content: Uint8Array; size: number } | null> {
  const [row] = (await selectFile(source, { taskId, path })).rows;
  return row ?? null;
}

const selectFile = prepared((db, p: { taskId: string; path: string }) =>
  db
    .selectFrom('WorkspaceFile')
    .select(['content', 'size'])
    .where('taskId', '=', p.taskId)
    .where('path', '=', p.path),
);

/** The workspace's files under a directory prefix ('' = all), sorted by path. */
export async function listWorkspaceFiles(
  source: DbOrTx,
  taskId: string,
  prefix: string,
): Promise<Array<{ path: string; size: number }>> {
  return queryable(source)
    .selectFrom('WorkspaceFile')
    .select(['path', 'size'])
    .where('taskId', '=', taskId)
    .$if(prefix !== '', (query) =>
      query.where(sql<string>`left(${sql.ref('path')}, length(${prefix}) + 1)`, '=', `${prefix}/`),
    )
    .orderBy('path')
    .execute();
}

/** Every file's path, hash and size, sorted by path (what a sandbox job is told of the workspace). */
export async function workspaceEntries(source: DbOrTx, taskId: string): Promise<WorkspaceFileEntry[]> {
  return queryable(source)
    .selectFrom('WorkspaceFile')
    .select(['path', 'sha256', 'size'])
    .where('taskId', '=', taskId)
    .orderBy('path')
    .execute();
}

/** Every file's path and size (to check the caps a change would leave). */
export async function workspaceSizes(
  source: DbOrTx,
  taskId: string,
): Promise<Array<{ path: string; size: number }>> {
  return queryable(source)
    .selectFrom('WorkspaceFile')
    .select(['path', 'size'])
    .where('taskId', '=', taskId)
    .execute();
}

/** Total bytes and number of the workspace's files other than `exceptPath`. */
export async function workspaceUsage(
  source: DbOrTx,
  taskId: string,
  exceptPath: string,
): Promise<{ bytes: number; files: number }> {
  const [row] = (await selectUsage(source, { taskId, exceptPath })).rows;
  return { bytes: Number(row?.bytes ?? 0), files: row?.files ?? 0 };
}

const selectUsage = prepared((db, p: { taskId: string; exceptPath: string }) =>
  db
    .selectFrom('WorkspaceFile')
    .select([
      sql<string>`coalesce(sum(${sql.ref('size')}), 0)::bigint::text`.as('bytes'),
      sql<number>`count(*)::int`.as('files'),
    ])
    .where('taskId', '=', p.taskId)
    .where('path', '<>', p.exceptPath),
);

/** A file to store: its bytes and their size and sha256 hex, and the step that wrote it. */
export interface WorkspaceFileWrite {
  path: string;
  content: Uint8Array;
  size: number;
  sha256: string;
  stepId: string;
}

/** Creates or replaces files of a task's workspace, in the caller's transaction. */
export async function putWorkspaceFiles(
  tx: Tx,
  taskId: string,
  files: readonly WorkspaceFileWrite[],
): Promise<void> {
  if (files.length === 0) return;
  await tx
    .insertInto('WorkspaceFile')
    .values(
      files.map((file) => ({
        taskId,
        path: file.path,
        content: Buffer.from(file.content),
        size: file.size,
        sha256: file.sha256,
        stepId: file.stepId,
        updatedAt: utcNow(),
      })),
    )
    .onConflict((conflict) =>
      conflict.columns(['taskId', 'path']).doUpdateSet((eb) => ({
        content: eb.ref('excluded.content'),
        size: eb.ref('excluded.size'),
        sha256: eb.ref('excluded.sha256'),
        stepId: eb.ref('excluded.stepId'),
        updatedAt: eb.ref('excluded.updatedAt'),
      })),
    )
    .execute();
}

/**
 * Deletes files at exactly these paths (a directory prefix deletes nothing), in the caller's
 * transaction; returns how many there were.
 */
export async function deleteWorkspaceFiles(
  tx: Tx,
  taskId: string,
  paths: readonly string[],
): Promise<number> {
  if (paths.length === 0) return 0;
  const result = await tx
    .deleteFrom('WorkspaceFile')
    .where('taskId', '=', taskId)
    .where('path', 'in', [...paths])
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
