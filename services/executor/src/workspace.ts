import { createHash } from 'node:crypto';
import { ErrorCodes, TandemError } from '@tandem/contracts';
import type { Db, Tx } from '@tandem/db';

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

type Client = Db['prisma'] | Tx;

function sha256(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

function asText(content: Uint8Array): { content: string; encoding: 'utf8' | 'base64' } {
  try {
    return { content: new TextDecoder('utf-8', { fatal: true }).decode(content), encoding: 'utf8' };
  } catch {
    return { content: Buffer.from(content).toString('base64'), encoding: 'base64' };
  }
}

/** Reads one file of a task's workspace; throws WORKSPACE.FILE_NOT_FOUND when there is none. */
export async function readWorkspaceFile(
  client: Client,
  taskId: string,
  path: string,
): Promise<WorkspaceFileView> {
  const file = await client.workspaceFile.findUnique({ where: { taskId_path: { taskId, path } } });
  if (!file) {
    throw new TandemError(ErrorCodes.WORKSPACE_FILE_NOT_FOUND, `the workspace has no file ${path}`);
  }
  return { path, size: file.size, ...asText(file.content) };
}

/** Lists the workspace's files under a directory prefix ('' = all), sorted by path. */
export async function listWorkspaceFiles(
  client: Client,
  taskId: string,
  prefix: string,
): Promise<WorkspaceEntry[]> {
  const rows = await client.workspaceFile.findMany({
    where: { taskId, ...(prefix === '' ? {} : { path: { startsWith: `${prefix}/` } }) },
    select: { path: true, size: true, sha256: true },
    orderBy: { path: 'asc' },
  });
  return rows;
}

/** Writes (creates or replaces) one file, within the workspace's caps; runs in the caller's transaction. */
export async function writeWorkspaceFile(
  tx: Tx,
  input: { taskId: string; stepId: string; path: string; content: Uint8Array },
  limits: WorkspaceLimits,
): Promise<WorkspaceEntry> {
  const size = input.content.byteLength;
  if (size > limits.maxFileBytes) {
    throw new TandemError(
      ErrorCodes.WORKSPACE_LIMIT,
      `${input.path} is ${size} bytes; a workspace file may have at most ${limits.maxFileBytes}`,
    );
  }
  const totals = await tx.workspaceFile.aggregate({
    where: { taskId: input.taskId, NOT: { path: input.path } },
    _sum: { size: true },
    _count: { _all: true },
  });
  if ((totals._sum.size ?? 0) + size > limits.maxTotalBytes) {
    throw new TandemError(
      ErrorCodes.WORKSPACE_LIMIT,
      `writing ${input.path} would take the workspace over ${limits.maxTotalBytes} bytes`,
    );
  }
  if (totals._count._all + 1 > limits.maxFiles) {
    throw new TandemError(
      ErrorCodes.WORKSPACE_LIMIT,
      `the workspace may hold at most ${limits.maxFiles} files`,
    );
  }
  const digest = sha256(input.content);
  const content = new Uint8Array(input.content);
  await tx.workspaceFile.upsert({
    where: { taskId_path: { taskId: input.taskId, path: input.path } },
    create: { taskId: input.taskId, path: input.path, content, size, sha256: digest, stepId: input.stepId },
    update: { content, size, sha256: digest, stepId: input.stepId },
  });
  return { path: input.path, size, sha256: digest };
}

/**
 * Saves what a sandbox run wrote back into the workspace (deleted files are removed), in the caller's
 * transaction. The caps are checked on the resulting workspace before anything is written, so a run over
 * them fails its step with WORKSPACE.LIMIT and saves nothing.
 */
export async function applySandboxFiles(
  tx: Tx,
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
