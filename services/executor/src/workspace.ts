import { createHash } from 'node:crypto';
import {
  deleteWorkspaceFiles,
  putWorkspaceFiles,
  sandboxRunFiles,
  workspaceSizes,
  type Tx,
} from '@tandem/db';
import { checkSandboxFiles, type WorkspaceLimits } from './domain/workspace.js';

/**
 * Saves what a sandbox run wrote back into the workspace (deleted files are removed), in the caller's
 * transaction. The caps are checked on the resulting workspace before anything is written
 * (`checkSandboxFiles`), so a run over them fails its step with WORKSPACE.LIMIT and saves nothing.
 * Returns how many files the run changed.
 */
export async function applySandboxFiles(
  tx: Tx,
  input: { taskId: string; stepId: string; runId: string },
  limits: WorkspaceLimits,
): Promise<number> {
  const files = await sandboxRunFiles(tx, input.runId);
  if (files.length === 0) return 0;
  checkSandboxFiles(await workspaceSizes(tx, input.taskId), files, limits);
  await deleteWorkspaceFiles(
    tx,
    input.taskId,
    files.filter((file) => file.deleted).map((file) => file.path),
  );
  await putWorkspaceFiles(
    tx,
    input.taskId,
    files
      .filter((file) => !file.deleted)
      .map((file) => {
        const content = new Uint8Array(file.content ?? new Uint8Array());
        return {
          path: file.path,
          content,
          size: content.byteLength,
          sha256: createHash('sha256').update(content).digest('hex'),
          stepId: input.stepId,
        };
      }),
  );
  return files.length;
}
