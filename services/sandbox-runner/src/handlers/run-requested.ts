import { createHash, randomUUID } from 'node:crypto';
import {
  JsonValue,
  boundSandboxEventParts,
  normalizeWorkspacePath,
  SandboxRunCompleted,
  type Envelope,
  type EventData,
  type SandboxRunRequested,
} from '@tandem/contracts';
import { createSandboxRun, enqueueOutbox, isUniqueViolation, markProcessed, type Db } from '@tandem/db';
import { outboxEvent, toJsonInput, type Log } from '@tandem/service-kit';
import { clampLimits, type SandboxCeilingsConfig } from '../limits.js';
import type { SandboxBackend, SandboxResult } from '../sandbox/index.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const RUN_REQUESTED_CONSUMER = 'sandbox-run-requested';

/** Jobs running in this process, by task, so a cancel request can kill them. */
export interface RunningJobs {
  start(taskId: string): AbortController;
  finish(taskId: string, controller: AbortController): void;
  /** Aborts every job of the task running here; returns how many. */
  cancel(taskId: string): number;
}

/** An in-memory registry of running jobs. */
export function createRunningJobs(): RunningJobs {
  const byTask = new Map<string, Set<AbortController>>();
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
  };
}

/** Task run states after which a queued job is not started any more. */
const ENDED = ['completed', 'failed', 'cancelled'];

/**
 * Runs a job at most once per idempotency key: a key already stored is not run again (its result event
 * was enqueued with the row). The job runs outside any transaction; the run row, the processed marker and
 * the result event commit together afterwards.
 */
export async function handleRunRequested(
  deps: {
    db: Db;
    prefix: string;
    backend: SandboxBackend;
    ceilings: SandboxCeilingsConfig;
    kick: () => void;
    running: RunningJobs;
    onRun?: (result: SandboxResult, language: string) => void;
  },
  envelope: Envelope<EventData<typeof SandboxRunRequested>>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const job = envelope.data;
  const existing = await deps.db.prisma.sandboxRun.findUnique({
    where: { idempotencyKey: job.idempotencyKey },
    select: { id: true },
  });
  if (existing) {
    await deps.db.prisma.$transaction(async (tx) => {
      await markProcessed(tx, RUN_REQUESTED_CONSUMER, context.messageId);
    });
    context.log.info(
      { key: job.idempotencyKey, runId: existing.id },
      'sandbox job already ran; not running it again',
    );
    return;
  }
  const limits = clampLimits(job.limits, deps.ceilings);
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
  deps.onRun?.(result, job.language);
  // Guest-chosen names must also be valid workspace paths (the executor saves them into the workspace).
  const written = result.files.filter((file) => {
    const normalized = normalizeWorkspacePath(file.path);
    return normalized.ok && normalized.path === file.path;
  });
  const filesTruncated = result.filesTruncated || written.length < result.files.length;
  if (written.length < result.files.length) {
    context.log.warn(
      { dropped: result.files.length - written.length },
      'files with names outside the workspace rules were not kept',
    );
  }
  const value = JsonValue.safeParse(result.value ?? null);
  const runId = randomUUID();
  // The event carries at most a bounded part of what the program printed and returned (issue 12): the
  // run row keeps the whole (within the runner's caps), and the executor reads a left-out value from it.
  const bounded = boundSandboxEventParts({
    stdout: result.stdout,
    stderr: result.stderr,
    stdoutTruncated: result.stdoutTruncated,
    stderrTruncated: result.stderrTruncated,
    value: value.success ? value.data : null,
    errorMessage: result.errorMessage ?? null,
    files: [
      ...written.map((file) => ({ path: file.path, size: file.content.byteLength, deleted: false })),
      ...result.deletedFiles.map((path) => ({ path, size: 0, deleted: true })),
    ],
    filesTruncated,
  });
  const { message } = outboxEvent(
    { prefix: deps.prefix, publisher: 'sandbox-runner' },
    SandboxRunCompleted,
    {
      idempotencyKey: job.idempotencyKey,
      runId,
      taskId: job.taskId,
      stepId: job.stepId,
      outcome: result.outcome,
      exitCode: result.exitCode,
      durationMs: result.durationMs,
      ...bounded,
    },
    { correlationId: job.taskId, causationId: envelope.id },
  );
  try {
    await deps.db.prisma.$transaction(async (tx) => {
      await markProcessed(tx, RUN_REQUESTED_CONSUMER, context.messageId);
      await createSandboxRun(tx, {
        id: runId,
        idempotencyKey: job.idempotencyKey,
        taskId: job.taskId,
        stepId: job.stepId,
        language: job.language,
        codeHash: createHash('sha256').update(job.code).digest('hex'),
        limits: toJsonInput(limits),
        outcome: result.outcome,
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
      });
      await enqueueOutbox(tx, message);
    });
  } catch (error) {
    // Another replica ran the same key at the same moment and stored first: its result stands.
    if (isUniqueViolation(error)) {
      context.log.warn(
        { key: job.idempotencyKey },
        'a concurrent run of the same job stored first; discarding this result',
      );
      return;
    }
    throw error;
  }
  deps.kick();
  context.log.info(
    { key: job.idempotencyKey, outcome: result.outcome, durationMs: result.durationMs },
    'sandbox job finished',
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
