import {
  ErrorCodes,
  TandemError,
  normalizeWorkspaceDirectory,
  normalizeWorkspacePath,
} from '@tandem/contracts';

/** Caps on one task's workspace. */
export interface WorkspaceLimits {
  maxFileBytes: number;
  maxTotalBytes: number;
  maxFiles: number;
}

/** A workspace path normalised with the contracts' rules; TOOL.PATH_REJECTED for one that leaves it. */
export function workspacePath(raw: string, directory = false): string {
  const result = directory ? normalizeWorkspaceDirectory(raw) : normalizeWorkspacePath(raw);
  if (!result.ok)
    throw new TandemError(ErrorCodes.TOOL_PATH_REJECTED, `path ${JSON.stringify(raw)}: ${result.reason}`);
  return result.path;
}

/**
 * Checks that writing `size` bytes to `path` keeps the workspace within its caps, given what the other
 * files use; WORKSPACE.LIMIT when it would not.
 */
export function checkFileWrite(
  input: { path: string; size: number; others: { bytes: number; files: number } },
  limits: WorkspaceLimits,
): void {
  if (input.size > limits.maxFileBytes) {
    throw new TandemError(
      ErrorCodes.WORKSPACE_LIMIT,
      `${input.path} is ${input.size} bytes; a workspace file may have at most ${limits.maxFileBytes}`,
    );
  }
  if (input.others.bytes + input.size > limits.maxTotalBytes) {
    throw new TandemError(
      ErrorCodes.WORKSPACE_LIMIT,
      `writing ${input.path} would take the workspace over ${limits.maxTotalBytes} bytes`,
    );
  }
  if (input.others.files + 1 > limits.maxFiles) {
    throw new TandemError(
      ErrorCodes.WORKSPACE_LIMIT,
      `the workspace may hold at most ${limits.maxFiles} files`,
    );
  }
}

/**
 * Checks the workspace a sandbox run's files would leave (deleted files removed, written ones replaced
 * or added) against the caps, before anything is written; WORKSPACE.LIMIT when it is over one.
 */
export function checkSandboxFiles(
  current: ReadonlyArray<{ path: string; size: number }>,
  files: ReadonlyArray<{ path: string; size: number; deleted: boolean }>,
  limits: WorkspaceLimits,
): void {
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
}

/** A file's bytes as `read_file` returns them: UTF-8 text, or base64 when they are not valid UTF-8. */
export function fileText(content: Uint8Array): { content: string; encoding: 'utf8' | 'base64' } {
  try {
    return { content: new TextDecoder('utf-8', { fatal: true }).decode(content), encoding: 'utf8' };
  } catch {
    return { content: Buffer.from(content).toString('base64'), encoding: 'base64' };
  }
}
