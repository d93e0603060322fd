import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Options of `waitFor`. */
export interface WaitForOptions {
  /** Says what was awaited; it is the timeout error's message. */
  description: string;
  /** Default 5000. */
  timeoutMs?: number;
  /** Default 50. */
  intervalMs?: number;
}

/**
 * Polls `fn` until it returns a value other than `false`, `null` or `undefined` without throwing,
 * and returns that value; on timeout throws with the description (and the last error, as cause).
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  options: WaitForOptions,
): Promise<Exclude<T, false | null | undefined>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let attempts = 0;
  for (;;) {
    attempts += 1;
    try {
      const value = await fn();
      if (isDone(value)) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(intervalMs, left));
  }
  const reason =
    lastError === undefined
      ? 'the condition stayed false'
      : `last attempt threw: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
  throw new Error(
    `timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${options.description}; ${reason}`,
    {
      cause: lastError,
    },
  );
}

function isDone<T>(value: T): value is Exclude<T, false | null | undefined> {
  return value !== false && value !== null && value !== undefined;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export async function getFreePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the port the OS assigned'));
        return;
      }
      const { port } = address;
      server.close(() => resolve(port));
    });
  });
}
