import { createHash, randomUUID } from 'node:crypto';
import {
  ErrorCodes,
  JsonValue,
  SANDBOX_EVENT_MAX_BYTES,
  SandboxOutcome,
  SandboxRunCompleted,
  TandemError,
  boundSandboxEventParts,
  jsonByteLength,
  normalizeWorkspacePath,
  toSafeJson,
  toSafeText,
  type BoundedSandboxEventParts,
  type Envelope,
  type EventData,
  type SandboxRunRequested,
} from '@tandem/contracts';
import {
  enqueueOutboxPrisma,
  finishSandboxRun,
  markProcessedPrisma,
  startSandboxRun,
  type Db,
  type OutboxMessage,
  type SandboxRunResult,
  type StoredSandboxRun,
} from '@tandem/db';
import { outboxEvent, toJsonInput, type Log } from '@tandem/service-kit';
import { clampLimits, type SandboxCeilingsConfig } from '../limits.js';
import type { SandboxBackend, SandboxResult } from '../sandbox/index.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const RUN_REQUESTED_CONSUMER = 'sandbox-run-requested';

/** A result this process got from a run but could not store yet (the store failed after the run). */
export interface KeptResult {
  runId: string;
  attempt: number;
  result: SandboxRunResult;
  event: BoundedEventFields;
}

/** Jobs running in this process, by task, so a cancel request can kill them. */
export interface RunningJobs {
  start(taskId: string): AbortController;
  finish(taskId: string, controller: AbortController): void;
  /** Aborts every job of the task running here; returns how many. */
  cancel(taskId: string): number;
  /** Keeps a result whose store failed, so a redelivery to this process stores it instead of running again. */
  keep(idempotencyKey: string, kept: KeptResult): void;
  /** Takes a kept result back (once). */
  take(idempotencyKey: string): KeptResult | undefined;
  /** Marks a key as being run here (false when it already is). */
  claim(idempotencyKey: string): boolean;
  release(idempotencyKey: string): void;
}

/** Results kept at most: each holds a job's capped output (a few MiB at worst). */
const MAX_KEPT = 16;

/** An in-memory registry of running jobs. */
export function createRunningJobs(): RunningJobs {
  const byTask = new Map<string, Set<AbortController>>();
  const kept = new Map<string, KeptResult>();
  const keys = new Set<string>();
  return {
    start(taskId) {
      const controller = new AbortController();
      const set = byTask.get(taskId) ?? new Set();
      set.add(controller);
      byTask.set(taskId, set);
      return controller;
    },
    finish(taskId, controller) {
      const set = byTask.get(taskId);
      set?.delete(controller);
      if (set?.size === 0) byTask.delete(taskId);
    },
    cancel(taskId) {
      const set = byTask.get(taskId);
      if (!set) return 0;
      for (const controller of set) controller.abort();
      return set.size;
    },
    keep(idempotencyKey, result) {
      kept.delete(idempotencyKey);
      kept.set(idempotencyKey, result);
      // Oldest first out: a result dropped here is re-run on its redelivery, as after a crash.
      while (kept.size > MAX_KEPT) {
        const oldest = kept.keys().next();
        if (oldest.done === true) break;
        kept.delete(oldest.value);
      }
    },
    take(idempotencyKey) {
      const result = kept.get(idempotencyKey);
      kept.delete(idempotencyKey);
      return result;
    },
    claim(idempotencyKey) {
      if (keys.has(idempotencyKey)) return false;
      keys.add(idempotencyKey);
      return true;
    },
    release(idempotencyKey) {
      keys.delete(idempotencyKey);
    },
  };
}

/** Task run states after which a queued job is not started any more. */
const ENDED = ['completed', 'failed', 'cancelled'];

/** Runs of one job (its first and re-runs after a runner died) before it ends `SANDBOX.INTERRUPTED`. */
export const DEFAULT_MAX_RUN_ATTEMPTS = 3;

type Job = EventData<typeof SandboxRunRequested>;
type BoundedEventFields = BoundedSandboxEventParts & {
  outcome: SandboxOutcome;
  exitCode: number | null;
  durationMs: number;
  errorCode?: string;
};

/** Dependencies of the run-requested handler. */
export interface RunRequestedDeps {
  db: Db;
  prefix: string;
  backend: SandboxBackend;
  ceilings: SandboxCeilingsConfig;
  kick: () => void;
  running: RunningJobs;
  /** Runs of one job before it ends `SANDBOX.INTERRUPTED` (default {@link DEFAULT_MAX_RUN_ATTEMPTS}). */
  maxAttempts?: number;
  onRun?: (result: SandboxResult, language: string) => void;
}

/**
 * Runs a job at most once per idempotency key, and says so when it must run it again (issue 12). Before
 * the program starts, the job is recorded as started (`startSandboxRun`, its own transaction); its
 * result is stored once on that row together with the processed marker and the result event. A
 * redelivery of a finished job republishes the stored result and runs nothing; a redelivery of a started,
 * unfinished job (its runner died) is a deliberate, logged re-run counted in `attempts`, up to
 * `maxAttempts`, after which the job ends `sandbox_error` with `SANDBOX.INTERRUPTED`. A failure after the
 * run in a live process keeps the result in memory, so the redelivery to this process stores it.
 */
export async function handleRunRequested(
  deps: RunRequestedDeps,
  envelope: Envelope<Job>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const job = envelope.data;
  const key = job.idempotencyKey;
  // A redelivery while this very process still runs the job (its ack wait passed): running it a second
  // time here would be the duplicate this guards against. Not acked either: redelivered later, it finds
  // the stored result (republished) or the result this process kept.
  if (!deps.running.claim(key)) {
    context.log.warn({ key }, 'sandbox job is already running in this process; not running it again');
    throw new TandemError(ErrorCodes.SANDBOX_UNAVAILABLE, 'the job is still running in this process', {
      retryable: true,
    });
  }
  try {
    const kept = deps.running.take(key);
    if (kept !== undefined && (await storeResult(deps, envelope, context, kept))) return;
    await startAndRun(deps, envelope, context);
  } finally {
    deps.running.release(key);
  }
}

async function startAndRun(
  deps: RunRequestedDeps,
  envelope: Envelope<Job>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const job = envelope.data;
  const maxAttempts = deps.maxAttempts ?? DEFAULT_MAX_RUN_ATTEMPTS;
  const limits = clampLimits(job.limits, deps.ceilings);
  const started = await startSandboxRun(
    deps.db,
    {
      id: randomUUID(),
      idempotencyKey: job.idempotencyKey,
      taskId: job.taskId,
      stepId: job.stepId,
      language: job.language,
      codeHash: createHash('sha256').update(job.code).digest('hex'),
      limits: toJsonInput(limits),
    },
    { maxAttempts },
  );
  if (started.state === 'finished') {
    await republish(deps, envelope, context, started.run);
    return;
  }
  if (started.state === 'exhausted') {
    context.log.error(
      { key: job.idempotencyKey, runId: started.runId, attempts: started.attempts },
      'sandbox job was interrupted at every attempt; ending it without running it again',
    );
    const message = `the job's runner stopped while running it ${started.attempts} times; it is not run again`;
    const result: SandboxRunResult = {
      outcome: 'sandbox_error',
      errorCode: ErrorCodes.SANDBOX_INTERRUPTED,
      errorMessage: message,
      stdout: '',
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      value: null,
      exitCode: null,
      durationMs: 0,
      filesTruncated: false,
      files: [],
    };
    await storeResult(deps, envelope, context, {
      runId: started.runId,
      // The row's last attempt holds it; this delivery stores the end in its name.
      attempt: started.attempts,
      result,
      event: { ...eventFields(result, []), errorCode: ErrorCodes.SANDBOX_INTERRUPTED },
    });
    return;
  }
  if (started.attempt > 1) {
    context.log.warn(
      { key: job.idempotencyKey, runId: started.runId, attempt: started.attempt, maxAttempts },
      'running an interrupted sandbox job again',
    );
  }
  const files = await loadWorkspaceFiles(deps.db, job, context.log);
  const run = await deps.db.prisma.taskRun.findUnique({
    where: { taskId: job.taskId },
    select: { status: true },
  });
  const controller = deps.running.start(job.taskId);
  // A job queued for a task that already ended (cancelled, past its deadline) is killed before it starts.
  if (run && ENDED.includes(run.status)) controller.abort();
  let result: SandboxResult;
  try {
    result = await deps.backend.run(
      {
        language: job.language,
        code: job.code,
        input: job.input ?? null,
        files,
        limits,
      },
      { signal: controller.signal },
    );
  } finally {
    deps.running.finish(job.taskId, controller);
  }
  // From here the program has run: whatever fails before its result is stored keeps the result in this
  // process, so the redelivery stores it instead of running the program again.
  const kept = toKept(started.runId, started.attempt, result, context.log);
  try {
    deps.onRun?.(result, job.language);
  } catch (error) {
    deps.running.keep(job.idempotencyKey, kept);
    throw error;
  }
  await storeResult(deps, envelope, context, kept, { keepOnFailure: true });
}

/** The stored form and the event fields of a finished run. */
function toKept(runId: string, attempt: number, result: SandboxResult, log: Log): KeptResult {
  // Guest-chosen names must also be valid workspace paths (the executor saves them into the workspace).
  const written = result.files.filter((file) => {
    const normalized = normalizeWorkspacePath(file.path);
    return normalized.ok && normalized.path === file.path;
  });
  const filesTruncated = result.filesTruncated || written.length < result.files.length;
  if (written.length < result.files.length) {
    log.warn(
      { dropped: result.files.length - written.length },
      'files with names outside the workspace rules were not kept',
    );
  }
  const value = JsonValue.safeParse(result.value ?? null);
  const stored: SandboxRunResult = {
    outcome: result.outcome,
    errorMessage: result.errorMessage ?? null,
    stdout: result.stdout,
    stderr: result.stderr,
    stdoutTruncated: result.stdoutTruncated,
    stderrTruncated: result.stderrTruncated,
    value: value.success ? value.data : null,
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    peakMemoryBytes: result.peakMemoryBytes,
    filesTruncated,
    files: [
      ...written.map((file) => ({
        path: file.path,
        content: new Uint8Array(file.content),
        size: file.content.byteLength,
        deleted: false,
      })),
      ...result.deletedFiles.map((path) => ({ path, size: 0, deleted: true })),
    ],
  };
  return { runId, attempt, result: stored, event: eventFields(stored, stored.files) };
}

/**
 * The event's share of a result: what the program printed and returned cut to the event's bound (issue
 * 12), made safe for Postgres as the stored row is (so a republish says exactly what the first did).
 */
function eventFields(
  result: SandboxRunResult,
  files: ReadonlyArray<{ path: string; size: number; deleted: boolean }>,
): BoundedEventFields {
  const safeValue = JsonValue.safeParse(toSafeJson(result.value ?? null));
  const outcome = SandboxOutcome.safeParse(result.outcome);
  return {
    outcome: outcome.success ? outcome.data : 'sandbox_error',
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    ...(typeof result.errorCode === 'string' ? { errorCode: result.errorCode } : {}),
    ...boundSandboxEventParts({
      stdout: toSafeText(result.stdout),
      stderr: toSafeText(result.stderr),
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
      value: safeValue.success ? safeValue.data : null,
      errorMessage:
        result.errorMessage === undefined || result.errorMessage === null
          ? null
          : toSafeText(result.errorMessage),
      files: files.map((file) => ({ path: toSafeText(file.path), size: file.size, deleted: file.deleted })),
      filesTruncated: result.filesTruncated,
    }),
  };
}

function completedMessage(
  deps: Pick<RunRequestedDeps, 'prefix'>,
  envelope: Envelope<Job>,
  runId: string,
  attempt: number,
  fields: BoundedEventFields,
): OutboxMessage {
  const job = envelope.data;
  const build = (parts: BoundedEventFields): OutboxMessage =>
    outboxEvent(
      { prefix: deps.prefix, publisher: 'sandbox-runner' },
      SandboxRunCompleted,
      {
        idempotencyKey: job.idempotencyKey,
        runId,
        taskId: job.taskId,
        stepId: job.stepId,
        runAttempt: attempt,
        ...parts,
      },
      { correlationId: job.taskId, causationId: envelope.id },
    ).message;
  const message = build(fields);
  if (jsonByteLength(message.payload) <= SANDBOX_EVENT_MAX_BYTES) return message;
  // Cannot happen with the part budgets (asserted in the contracts tests); if it ever did, the event
  // goes out with only the outcome rather than block the outbox: the stored run has everything.
  return build({
    ...fields,
    stdout: '',
    stderr: '',
    stdoutTruncated: true,
    stderrTruncated: true,
    value: null,
    valueTruncated: true,
    files: [],
    filesTruncated: true,
    errorMessage: null,
  });
}

/**
 * Stores a result once on its row with the processed marker and the result event (one transaction).
 * Returns false when the row was not this attempt's any more (finished, or a later attempt took over):
 * nothing is written and the result is dropped. With `keepOnFailure`, a failed store keeps the result in
 * this process for the redelivery.
 */
async function storeResult(
  deps: RunRequestedDeps,
  envelope: Envelope<Job>,
  context: { messageId: string; log: Log },
  kept: KeptResult,
  options: { keepOnFailure?: boolean } = {},
): Promise<boolean> {
  const job = envelope.data;
  let stored: boolean;
  try {
    stored = await deps.db.prisma.$transaction(async (tx) => {
      if (!(await finishSandboxRun(tx, { runId: kept.runId, attempt: kept.attempt }, kept.result)))
        return false;
      await markProcessedPrisma(tx, RUN_REQUESTED_CONSUMER, context.messageId);
      await enqueueOutboxPrisma(tx, completedMessage(deps, envelope, kept.runId, kept.attempt, kept.event));
      return true;
    });
  } catch (error) {
    if (options.keepOnFailure === true) deps.running.keep(job.idempotencyKey, kept);
    throw error;
  }
  if (!stored) {
    context.log.warn(
      { key: job.idempotencyKey, runId: kept.runId, attempt: kept.attempt },
      'a newer attempt of this sandbox job took over; discarding this result',
    );
    return false;
  }
  deps.kick();
  context.log.info(
    {
      key: job.idempotencyKey,
      outcome: kept.result.outcome,
      durationMs: kept.result.durationMs,
      attempt: kept.attempt,
    },
    'sandbox job finished',
  );
  return true;
}

/** A redelivery of a finished job: its stored result goes out again (a new event id), nothing runs. */
async function republish(
  deps: RunRequestedDeps,
  envelope: Envelope<Job>,
  context: { messageId: string; log: Log },
  run: StoredSandboxRun,
): Promise<void> {
  const fields = eventFields(
    {
      outcome: run.outcome,
      errorCode: run.errorCode,
      errorMessage: run.errorMessage,
      stdout: run.stdout,
      stderr: run.stderr,
      stdoutTruncated: run.stdoutTruncated,
      stderrTruncated: run.stderrTruncated,
      value: run.value,
      exitCode: run.exitCode,
      durationMs: run.durationMs,
      filesTruncated: run.filesTruncated,
      files: [],
    },
    run.files,
  );
  await deps.db.prisma.$transaction(async (tx) => {
    await markProcessedPrisma(tx, RUN_REQUESTED_CONSUMER, context.messageId);
    await enqueueOutboxPrisma(tx, completedMessage(deps, envelope, run.runId, run.attempts, fields));
  });
  deps.kick();
  context.log.info(
    { key: envelope.data.idempotencyKey, runId: run.runId },
    'sandbox job already ran; republished its stored result',
  );
}

/**
 * The task workspace files a job sees, read from the executor's store by (taskId, path). A file whose
 * content changed since the request was made is still given (the newest version) and logged.
 */
async function loadWorkspaceFiles(
  db: Db,
  job: EventData<typeof SandboxRunRequested>,
  log: Log,
): Promise<Array<{ path: string; content: Buffer }>> {
  const wanted = job.files ?? [];
  if (wanted.length === 0) return [];
  const rows = await db.prisma.workspaceFile.findMany({
    where: { taskId: job.taskId, path: { in: wanted.map((file) => file.path) } },
    select: { path: true, content: true, sha256: true },
  });
  const hashes = new Map(wanted.map((file) => [file.path, file.sha256]));
  for (const row of rows) {
    if (hashes.get(row.path) !== row.sha256)
      log.warn({ path: row.path }, 'a workspace file changed after the job was requested');
  }
  if (rows.length < wanted.length)
    log.warn({ missing: wanted.length - rows.length }, 'workspace files missing for a job');
  return rows.map((row) => ({ path: row.path, content: Buffer.from(row.content) }));
}
