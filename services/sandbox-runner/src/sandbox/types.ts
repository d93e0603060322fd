/**
 * The sandbox's domain types. They mirror `SandboxLanguage`, `SandboxLimits` and `SandboxOutcome` in
 * `@tandem/contracts` (a type test keeps them in step) but stay local so the execution core has no wire
 * dependencies: handlers parse events with the contracts and hand plain jobs to a `SandboxBackend`.
 */

/** Languages a backend runs. */
export type SandboxLanguage = 'javascript' | 'python';

/** Per-job limits. Zero or negative values are a caller bug (the contract schema rejects them). */
export interface SandboxLimits {
  /**
   * Wall-clock budget of the job, from handing it to a started sandbox (its interpreter up and waiting) to
   * the sandbox's exit. The start itself is bounded separately (it happens before the job, in a warm pool).
   */
  timeoutMs: number;
  /** Cap on each of stdout and stderr; exceeding either ends the job with `output_limit`. */
  maxOutputBytes: number;
  /**
   * Memory cap: the job's memory cgroup (everything the box uses), plus RLIMIT_AS around Python code (a
   * clean MemoryError first) and the engine's own limit for JavaScript. Absent: the backend's default.
   */
  memoryMb?: number;
  /**
   * Caps on what is collected back from the working directory (`SandboxResult.files`). Beyond any of them
   * the result says `filesTruncated`; the guest is not stopped. Defaults: 100 files, 1 MiB per file, 8 MiB
   * in all. Zero is allowed (nothing is collected).
   */
  maxFiles?: number;
  maxFileBytes?: number;
  maxTotalFileBytes?: number;
}

/** A file of a job's working directory; `path` is relative POSIX (`data/in.csv`), without `.` or `..`. */
export interface SandboxFile {
  path: string;
  content: Buffer;
}

/** One piece of guest code to run. */
export interface SandboxJob {
  language: SandboxLanguage;
  /** Untrusted program text. */
  code: string;
  /** JSON value the program sees as `input`; absent means `null`. */
  input?: unknown;
  /**
   * Files placed in the guest's working directory before it starts (Python: relative `open()`; JavaScript:
   * the `files` global). A path that is absolute, has an empty, `.` or `..` segment, holds NUL, is longer
   * than 2048 bytes (a segment 255), repeats, or is both a file and a directory of another rejects the job.
   */
  files?: SandboxFile[];
  limits: SandboxLimits;
}

/** How a job ended. Every guest behaviour maps to one of these; only a malformed job rejects. */
export type SandboxOutcome =
  'ok' | 'error' | 'timeout' | 'memory_limit' | 'output_limit' | 'killed' | 'sandbox_error';

/** What came back from one job. */
export interface SandboxResult {
  outcome: SandboxOutcome;
  /** At most `limits.maxOutputBytes` bytes of UTF-8, cut at a character boundary. */
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** The program's JSON result when `outcome` is `ok`, else `null`. Guest-controlled data. */
  value: unknown;
  /** The guest's exit code; `null` when it died by a signal or never ran. */
  exitCode: number | null;
  /** The signal that ended the guest (e.g. `SIGKILL`), else `null`. */
  signal: string | null;
  /** Whole milliseconds from handing the job to its started sandbox to the sandbox being gone. */
  durationMs: number;
  /** A one-line explanation for any outcome other than `ok`. */
  errorMessage?: string;
  /** The job's peak memory as its cgroup recorded it; null without cgroups (or when not reported). */
  peakMemoryBytes?: number | null;
  /**
   * Regular files of the working directory that are new or whose content differs from the job's `files`,
   * read by the runner after the guest exited (whatever the outcome), in path order (segment by segment).
   * Symlinks, FIFOs, sockets and devices are never read. Guest-controlled content.
   */
  files: SandboxFile[];
  /** Paths of the job's `files` that are no longer regular files when the guest exited, sorted. */
  deletedFiles: string[];
  /**
   * True when `files` is not everything that changed: a file over `maxFileBytes` was left out, the
   * `maxFiles` or `maxTotalFileBytes` cap cut the list (it stops at the first file that does not fit),
   * or the directory was too large, too deep or had names that are not UTF-8 to walk completely.
   */
  filesTruncated: boolean;
}

/** Per-run options that are not part of the job itself. */
export interface SandboxRunOptions {
  /** Aborting kills the job; it then ends with outcome `killed`. */
  signal?: AbortSignal;
}

/** The result of a backend's self-check; `problems` are human-readable and empty when `ok`. */
export interface SandboxCheck {
  ok: boolean;
  problems: string[];
  /** Limits this host cannot enforce as designed (the runner still works, with weaker fallbacks). */
  warnings?: string[];
}

/**
 * Something that runs untrusted code. The bubblewrap backend is the first; a warm pool or a VM-based
 * backend is another implementation of the same interface.
 */
export interface SandboxBackend {
  /** Short identifier for logs and metrics, e.g. `bwrap`. */
  readonly name: string;
  /** Runs one job to completion. Resolves for every guest behaviour; rejects only for a malformed job. */
  run(job: SandboxJob, options?: SandboxRunOptions): Promise<SandboxResult>;
  /** Verifies the backend can run jobs on this host (for readiness probes and start-up). */
  check(): Promise<SandboxCheck>;
  /** Starts the warm pool (boxes ready before the first job); a no-op without one. */
  warm(): void;
  /**
   * Waits until every finished job's sandbox is torn down (its cgroups and directories removed), which
   * happens after `run` resolved, off the job's path.
   */
  drain(): Promise<void>;
  /**
   * Discards warm boxes and waits until every finished job's directories are removed (that happens after
   * `run` resolved, off the job's path). Jobs still running finish; new ones end `sandbox_error`.
   */
  close(): Promise<void>;
}
