import { createHash, randomUUID } from 'node:crypto';
import {
  ErrorCodes,
  SANDBOX_EVENT_MAX_BYTES,
  SandboxRunCompleted,
  SandboxRunRequested,
  TandemError,
  jsonByteLength,
  type Envelope,
  type EventData,
} from '@tandem/contracts';
import {
  enqueueOutbox,
  finishSandboxRun,
  markProcessed,
  startSandboxRun,
  taskRunStatus,
  workspaceFilesAt,
  type Db,
  type OutboxMessage,
  type StoredSandboxRun,
  type Tx,
} from '@tandem/db';
import { outboxEvent, type Log } from '@tandem/service-kit';
import { define } from '../consumers.js';
import {
  interruptedRun,
  killedBeforeStart,
  outcomeOnly,
  runEventFields,
  runRecord,
  storedRunEventFields,
  type RunEventFields,
  type RunRecord,
} from '../domain/run-result.js';
import { clampLimits, type SandboxCeilingsConfig } from '../limits.js';
import type { SandboxBackend, SandboxResult } from '../sandbox/index.js';

/** Consumer name (wire name: renaming it creates a new durable consumer; also the inbox key). */
export const RUN_REQUESTED_CONSUMER = 'sandbox-run-requested';

/** A result this process got from a run but could not store yet (the store failed after the run). */
export interface KeptResult {
  runId: string;
  attempt: number;
  result: RunRecord;
  event: RunEventFields;
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

/** Runs of one job (its first and re-runs after a runner died) before it ends `SANDBOX.INTERRUPTED`. */
export const DEFAULT_MAX_RUN_ATTEMPTS = 3;

type Job = EventData<typeof SandboxRunRequested>;

/** Dependencies of the run-requested consumer. */
export interface RunRequestedDeps {
  db: Db;
  prefix: string;
  backend: SandboxBackend;
  ceilings: SandboxCeilingsConfig;
  running: RunningJobs;
  /** Runs of one job before it ends `SANDBOX.INTERRUPTED` (default {@link DEFAULT_MAX_RUN_ATTEMPTS}). */
  maxAttempts?: number;
  onRun?: (result: SandboxResult, language: string) => void;
}

/** What the steps of one delivery use of the framework's context. */
interface Delivery {
  deps: RunRequestedDeps;
  messageId: string;
  inbox: string;
  log: Log;
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
}

/**
 * `sandbox.run-requested`: runs a job at most once per idempotency key, and says so when it must run it
 * again (issue 12). Staged: the program runs between transactions. Before it starts, the job is recorded
 * as started (`startSandboxRun`, its own transaction); its result is stored once on that row together
 * with the inbox row and the result event (one transaction, handed to the relay after COMMIT). A
 * redelivery of a finished job republishes the stored result and runs nothing; a redelivery of a
 * started, unfinished job (its runner died) is a deliberate, logged re-run counted in `attempts`, up to
 * `maxAttempts`, after which the job ends `sandbox_error` with `SANDBOX.INTERRUPTED`. A failure after the
 * run in a live process keeps the result in memory, so the redelivery to this process stores it.
 *
 * The SandboxRun row, not the inbox, decides whether a result is stored: a delivery whose message was
 * recorded already still republishes a finished job (as before the framework), and a discarded attempt
 * must not stop the attempt that holds the row from storing. So the transactions here are
 * `context.transaction` with the inbox row written beside the result, and the framework's own inbox
 * commit after `run` finds it there.
 */
export const sandboxRunRequested = define({
  durable: RUN_REQUESTED_CONSUMER,
  event: SandboxRunRequested,
  run: (envelope, context) =>
    handleRunRequested(
      {
        deps: context.deps,
        messageId: context.messageId,
        inbox: context.inbox,
        log: context.log,
        transaction: (fn) => context.transaction(fn),
      },
      envelope,
    ),
});

async function handleRunRequested(delivery: Delivery, envelope: Envelope<Job>): Promise<void> {
  const { deps, log } = delivery;
  const key = envelope.data.idempotencyKey;
  // A redelivery while this very process still runs the job (its ack wait passed): running it a second
  // time here would be the duplicate this guards against. Not acked either: redelivered later, it finds
  // the stored result (republished) or the result this process kept.
  if (!deps.running.claim(key)) {
    log.warn({ key }, 'sandbox job is already running in this process; not running it again');
    throw new TandemError(ErrorCodes.SANDBOX_UNAVAILABLE, 'the job is still running in this process', {
      retryable: true,
    });
  }
  try {
    const kept = deps.running.take(key);
    if (kept !== undefined && (await storeResult(delivery, envelope, kept))) return;
    await startAndRun(delivery, envelope);
  } finally {
    deps.running.release(key);
  }
}

async function startAndRun(delivery: Delivery, envelope: Envelope<Job>): Promise<void> {
  const { deps, log } = delivery;
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
      // Its spread: an interface is no JsonValue to TypeScript, the plain object of numbers it holds is.
      limits: { ...limits },
    },
    { maxAttempts },
  );
  if (started.state === 'finished') {
    await republish(delivery, envelope, started.run);
    return;
  }
  if (started.state === 'exhausted') {
    log.error(
      { key: job.idempotencyKey, runId: started.runId, attempts: started.attempts },
      'sandbox job was interrupted at every attempt; ending it without running it again',
    );
    const interrupted = interruptedRun(started.attempts);
    await storeResult(delivery, envelope, {
      runId: started.runId,
      // The row's last attempt holds it; this delivery stores the end in its name.
      attempt: started.attempts,
      result: interrupted.record,
      event: interrupted.event,
    });
    return;
  }
  if (started.attempt > 1) {
    log.warn(
      { key: job.idempotencyKey, runId: started.runId, attempt: started.attempt, maxAttempts },
      'running an interrupted sandbox job again',
    );
  }
  const files = await loadWorkspaceFiles(deps.db, job, log);
  const status = await taskRunStatus(deps.db, job.taskId);
  const controller = deps.running.start(job.taskId);
  // A job queued for a task that already ended (cancelled, past its deadline) is killed before it starts.
  if (killedBeforeStart(status)) controller.abort();
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
  const { record, dropped } = runRecord(result);
  if (dropped > 0) log.warn({ dropped }, 'files with names outside the workspace rules were not kept');
  const kept: KeptResult = {
    runId: started.runId,
    attempt: started.attempt,
    result: record,
    event: runEventFields(record, record.files),
  };
  try {
    deps.onRun?.(result, job.language);
  } catch (error) {
    deps.running.keep(job.idempotencyKey, kept);
    throw error;
  }
  await storeResult(delivery, envelope, kept, { keepOnFailure: true });
}

function completedMessage(
  deps: Pick<RunRequestedDeps, 'prefix'>,
  envelope: Envelope<Job>,
  runId: string,
  attempt: number,
  fields: RunEventFields,
): OutboxMessage {
  const job = envelope.data;
  const build = (parts: RunEventFields): OutboxMessage =>
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
  return build(outcomeOnly(fields));
}

/**
 * Stores a result once on its row with the inbox row and the result event (one transaction). Returns
 * false when the row was not this attempt's any more (finished, or a later attempt took over): nothing is
 * written and the result is dropped. With `keepOnFailure`, a failed store keeps the result in this
 * process for the redelivery.
 */
async function storeResult(
  delivery: Delivery,
  envelope: Envelope<Job>,
  kept: KeptResult,
  options: { keepOnFailure?: boolean } = {},
): Promise<boolean> {
  const { deps, log } = delivery;
  const job = envelope.data;
  let stored: boolean;
  try {
    stored = await delivery.transaction(async (tx) => {
      if (!(await finishSandboxRun(tx, { runId: kept.runId, attempt: kept.attempt }, kept.result)))
        return false;
      await markProcessed(tx, delivery.inbox, delivery.messageId);
      await enqueueOutbox(tx, completedMessage(deps, envelope, kept.runId, kept.attempt, kept.event));
      return true;
    });
  } catch (error) {
    if (options.keepOnFailure === true) deps.running.keep(job.idempotencyKey, kept);
    throw error;
  }
  if (!stored) {
    log.warn(
      { key: job.idempotencyKey, runId: kept.runId, attempt: kept.attempt },
      'a newer attempt of this sandbox job took over; discarding this result',
    );
    return false;
  }
  // The fault suite counts this line (with `key`) to tell how often each job ran to its end.
  log.info(
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
async function republish(delivery: Delivery, envelope: Envelope<Job>, run: StoredSandboxRun): Promise<void> {
  const fields = storedRunEventFields(run);
  await delivery.transaction(async (tx) => {
    await markProcessed(tx, delivery.inbox, delivery.messageId);
    await enqueueOutbox(tx, completedMessage(delivery.deps, envelope, run.runId, run.attempts, fields));
  });
  delivery.log.info(
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
  job: Job,
  log: Log,
): Promise<Array<{ path: string; content: Buffer }>> {
  const wanted = job.files ?? [];
  if (wanted.length === 0) return [];
  const rows = await workspaceFilesAt(
    db,
    job.taskId,
    wanted.map((file) => file.path),
  );
  const hashes = new Map(wanted.map((file) => [file.path, file.sha256]));
  for (const row of rows) {
    if (hashes.get(row.path) !== row.sha256)
      log.warn({ path: row.path }, 'a workspace file changed after the job was requested');
  }
  if (rows.length < wanted.length)
    log.warn({ missing: wanted.length - rows.length }, 'workspace files missing for a job');
  return rows.map((row) => ({ path: row.path, content: Buffer.from(row.content) }));
}
