/**
 * A job before it reaches a box: its validation, what is handed to the wrapper on the go line, and the caps
 * on collecting its working directory. Pure.
 */
import type { SandboxFile, SandboxJob } from '../types.js';
import { assertValidFiles, type CollectLimits } from '../work-files.js';

/** Caps on collecting the working directory when the job does not set them. */
export const FILE_DEFAULTS = {
  maxFiles: 100,
  maxFileBytes: 1024 * 1024,
  maxTotalFileBytes: 8 * 1024 * 1024,
} as const;
/**
 * Bounds on the collector's own work, whatever the guest left: levels walked and wall time (entries read
 * is `maxCollectEntries`). Beyond any of them the result is `filesTruncated`.
 */
export const COLLECT_BOUNDS = { maxDepth: 64, budgetMs: 5_000 } as const;
/**
 * Memory of a JavaScript box that is the Node host's own (V8, its threads, the engine's WebAssembly code),
 * not the program's: the engine's heap cap is the job's memory limit minus this, so a program over its
 * limit is stopped by the engine (a clean `memory_limit` report) before the cgroup's OOM kill.
 */
export const JAVASCRIPT_HOST_BYTES = 56 * 1024 * 1024;
/** The least heap a JavaScript program gets, however small its limit (the cgroup still bounds the box). */
export const JAVASCRIPT_MIN_HEAP_BYTES = 8 * 1024 * 1024;

/**
 * Checks a job's shape (a malformed job is a caller bug and throws) and returns its input as JSON and its
 * validated files.
 */
export function assertValidJob(job: SandboxJob): { inputJson: string; files: SandboxFile[] } {
  if (job.language !== 'javascript' && job.language !== 'python') {
    throw new TypeError(`unsupported sandbox language: ${String(job.language)}`);
  }
  if (typeof job.code !== 'string') throw new TypeError('sandbox job code must be a string');
  const { timeoutMs, maxOutputBytes, memoryMb } = job.limits;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`invalid timeoutMs: ${timeoutMs}`);
  if (!Number.isInteger(maxOutputBytes) || maxOutputBytes <= 0) {
    throw new RangeError(`invalid maxOutputBytes: ${maxOutputBytes}`);
  }
  if (memoryMb !== undefined && (!Number.isInteger(memoryMb) || memoryMb <= 0)) {
    throw new RangeError(`invalid memoryMb: ${memoryMb}`);
  }
  for (const name of ['maxFiles', 'maxFileBytes', 'maxTotalFileBytes'] as const) {
    const value = job.limits[name];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw new RangeError(`invalid ${name}: ${value}`);
    }
  }
  // Throws for BigInt or cycles; undefined for a function or symbol: either way the input is not JSON.
  const inputJson: string | undefined = JSON.stringify(job.input ?? null);
  if (inputJson === undefined) throw new TypeError('sandbox job input is not JSON');
  return { inputJson, files: assertValidFiles(job.files) };
}

/** Why the job's files cannot fit a working directory of `workBytes`, or null when they fit. */
export function oversizedFiles(files: readonly SandboxFile[], workBytes: number): string | null {
  const inputBytes = files.reduce((sum, file) => sum + file.content.length, 0);
  return inputBytes > workBytes
    ? `the job's files (${inputBytes} bytes) do not fit the working directory (${workBytes} bytes)`
    : null;
}

/**
 * The memory limit the wrapper applies itself, in bytes (0: none, the job named no limit). Python applies it
 * as RLIMIT_AS around the user's code (a clean MemoryError before the cgroup's OOM kill); the JavaScript host
 * gives its engine the limit less the host's own share.
 */
export function wrapperMemoryBytes(job: SandboxJob): number {
  if (job.limits.memoryMb === undefined) return 0;
  const memoryBytes = job.limits.memoryMb * 1024 * 1024;
  return job.language === 'javascript'
    ? Math.max(JAVASCRIPT_MIN_HEAP_BYTES, memoryBytes - JAVASCRIPT_HOST_BYTES)
    : memoryBytes;
}

/** The line the wrapper waits for on its go channel: `<memoryBytes> <timeoutMs>`. */
export function goLine(job: SandboxJob): string {
  return `${wrapperMemoryBytes(job)} ${Math.ceil(job.limits.timeoutMs)}\n`;
}

/** The caps on collecting the job's working directory. */
export function collectLimits(job: SandboxJob, maxCollectEntries: number): CollectLimits {
  return {
    maxFiles: job.limits.maxFiles ?? FILE_DEFAULTS.maxFiles,
    maxFileBytes: job.limits.maxFileBytes ?? FILE_DEFAULTS.maxFileBytes,
    maxTotalFileBytes: job.limits.maxTotalFileBytes ?? FILE_DEFAULTS.maxTotalFileBytes,
    maxEntries: maxCollectEntries,
    ...COLLECT_BOUNDS,
  };
}
