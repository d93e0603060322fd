/** Host tools the runner runs itself (mount, umount, rm, chmod, prlimit), outside any box. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Budget for one mount, umount, chmod or rm the runner runs itself. */
const TOOL_TIMEOUT_MS = 30_000;
/** GNU coreutils, used to remove a `directory` working dir however deep or unreadable the guest made it. */
export const RM_PATH = '/usr/bin/rm';
/** GNU coreutils chmod, for whole trees (`-R`). */
export const CHMOD_PATH = '/usr/bin/chmod';

/** An error's message, or the thrown value as text. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs a host tool the runner needs (mount, umount, rm, prlimit) with an empty environment, as the runner or
 * as `credentials`; throws on failure.
 */
export async function runTool(
  file: string,
  args: readonly string[],
  credentials?: { uid: number; gid: number },
): Promise<void> {
  try {
    await execFileAsync(file, [...args], {
      env: {},
      cwd: '/',
      timeout: TOOL_TIMEOUT_MS,
      maxBuffer: 64 * 1024,
      ...(credentials ?? {}),
    });
  } catch (error) {
    const stderr =
      typeof error === 'object' && error !== null && 'stderr' in error && typeof error.stderr === 'string'
        ? error.stderr.trim()
        : '';
    throw new Error(`${file} ${args.join(' ')} failed: ${stderr === '' ? describeError(error) : stderr}`, {
      cause: error,
    });
  }
}
