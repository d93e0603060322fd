import { queryable, type DbOrTx } from '../queryable.js';

// Reads of tables the sandbox-runner does not write (the executor's), for its jobs.

/** A stored workspace file of a task, with its content. */
export interface WorkspaceFileContent {
  path: string;
  content: Buffer;
  sha256: string;
}

/** The task's workspace files at these paths (those that exist). */
export async function workspaceFilesAt(
  db: DbOrTx,
  taskId: string,
  paths: readonly string[],
): Promise<WorkspaceFileContent[]> {
  if (paths.length === 0) return [];
  return queryable(db)
    .selectFrom('WorkspaceFile')
    .select(['path', 'content', 'sha256'])
    .where('taskId', '=', taskId)
    .where('path', 'in', paths)
    .execute();
}
