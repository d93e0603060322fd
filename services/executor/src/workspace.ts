import { createHash } from 'node:crypto';
import { ErrorCodes, TandemError } from '@tandem/contracts';
import type { Sql, PrismaTx } from '@tandem/db';

/** Caps on one task's workspace. */
export interface WorkspaceLimits {
  maxFileBytes: number;
  maxTotalBytes: number;
  maxFiles: number;
}

/** A file as `read_file` returns it: UTF-8 text, or base64 when the bytes are not valid UTF-8. */
export interface WorkspaceFileView {
  path: string;
  content: string;
  encoding: 'utf8' | 'base64';
  size: number;
}

/** A file's identity in a listing or a sandbox snapshot. */
export interface WorkspaceEntry {
  path: string;
  size: number;
  sha256: string;
}

function sha256(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

/**
 * Saves what a sandbox run wrote back into the workspace (deleted files are removed), in the caller's
 * transaction. The caps are checked on the resulting workspace before anything is written, so a run over
 * them fails its step with WORKSPACE.LIMIT and saves nothing.
 */
export async function applySandboxFiles(
  tx: PrismaTx,
  input: { taskId: string; stepId: string; runId: string },
  limits: WorkspaceLimits,
): Promise<number> {
  const files = await tx.sandboxRunFile.findMany({ where: { runId: input.runId }, orderBy: { path: 'asc' } });
  if (files.length === 0) return 0;
  const current = await tx.workspaceFile.findMany({
    where: { taskId: input.taskId },
    select: { path: true, size: true },
  });
  const sizes = new Map(current.map((file) => [file.path, file.size]));
  for (const file of files) {
    if (file.deleted) {
      sizes.delete(file.path);
      continue;
    }
    if (file.size > limits.maxFileBytes) {
      throw new TandemError(
        ErrorCodes.WORKSPACE_LIMIT,
        `the program wrote ${file.path} with ${file.size} bytes; a workspace file may have at most ${limits.maxFileBytes}`,
      );
    }
    sizes.set(file.path, file.size);
  }
  const total = [...sizes.values()].reduce((sum, size) => sum + size, 0);
  if (total > limits.maxTotalBytes || sizes.size > limits.maxFiles) {
    throw new TandemError(
      ErrorCodes.WORKSPACE_LIMIT,
      `the files the program wrote would take the workspace to ${sizes.size} files and ${total} bytes; the caps are ${limits.maxFiles} files and ${limits.maxTotalBytes} bytes`,
    );
  }
  const removed = files.filter((file) => file.deleted).map((file) => file.path);
  if (removed.length > 0)
    await tx.workspaceFile.deleteMany({ where: { taskId: input.taskId, path: { in: removed } } });
  for (const file of files) {
    if (file.deleted) continue;
    const content = new Uint8Array(file.content ?? new Uint8Array());
    const digest = sha256(content);
    await tx.workspaceFile.upsert({
      where: { taskId_path: { taskId: input.taskId, path: file.path } },
      create: {
        taskId: input.taskId,
        path: file.path,
        content,
        size: content.byteLength,
        sha256: digest,
        stepId: input.stepId,
      },
      update: { content, size: content.byteLength, sha256: digest, stepId: input.stepId },
    });
  }
  return files.length;
}

/**
 * Deletes one workspace file (`delete_file`) in the caller's transaction; false when there was no file at
 * that path, which is not an error (the state the step asks for already holds). Only the exact path: a
 * directory prefix deletes nothing.
 */
export async function deleteWorkspaceFileSql(sql: Sql, taskId: string, path: string): Promise<boolean> {
  const result = await sql.query(`DELETE FROM "WorkspaceFile" WHERE "taskId" = $1::uuid AND "path" = $2`, [
    taskId,
    path,
  ]);
  return result.rowCount > 0;
}
