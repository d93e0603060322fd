import type { UnpublishableOutboxRow } from '@tandem/bus';
import {
  DEFAULT_BUS_PAYLOAD_LIMITS,
  ErrorCodes,
  PublicSubjects,
  SandboxRunCompleted,
  TaskCancelRequestedCloudEvent,
  scanJsonText,
  subjectFor,
} from '@tandem/contracts';
import type { OutboxMessage } from '@tandem/db';
import { Counter, Histogram, findCancelTarget, outboxEvent, type ServiceRuntime } from '@tandem/service-kit';
import type { SandboxRunnerConfig } from './config.js';
import { createRunningJobs, sandboxRunRequested } from './handlers/sandbox-run-requested.js';
import type { SandboxBackend } from './sandbox/index.js';

/** The sandbox-runner: runs code jobs from the bus in the sandbox backend and publishes their results. */
export async function createSandboxRunner(deps: {
  runtime: ServiceRuntime;
  config: SandboxRunnerConfig;
  backend: SandboxBackend;
}): Promise<void> {
  const { runtime, config, backend } = deps;
  const runs = new Counter({
    name: 'tandem_sandbox_runs_total',
    help: 'Sandbox jobs by language and outcome',
    labelNames: ['language', 'outcome'],
    registers: [runtime.metrics.registry],
  });
  const seconds = new Histogram({
    name: 'tandem_sandbox_run_duration_seconds',
    help: 'Sandbox job wall time',
    labelNames: ['language'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [runtime.metrics.registry],
  });
  // A result NATS refuses for good is dead-lettered by the relay; its step gets a typed failed outcome
  // instead of waiting for a result that never comes.
  runtime.relay.onUnpublishable((row) => unpublishableRunResult(config.TANDEM_SUBJECT_PREFIX, row));
  const running = createRunningJobs();
  // Every replica must see a cancel (the job may run on any of them): a plain subscription, not a
  // durable consumer. A missed cancel costs at most the job's own timeout; the task has ended anyway.
  const cancels = runtime.bus.nc.subscribe(
    subjectFor(config.TANDEM_SUBJECT_PREFIX, PublicSubjects.taskCancelRequested),
    {
      callback: (error, message) => {
        if (error) return;
        let parsed: ReturnType<typeof TaskCancelRequestedCloudEvent.safeParse>;
        try {
          const text = new TextDecoder().decode(message.data);
          // A public subject: size and depth on the raw text first, as for every bus payload.
          if (!scanJsonText(text, DEFAULT_BUS_PAYLOAD_LIMITS).ok) return;
          parsed = TaskCancelRequestedCloudEvent.safeParse(JSON.parse(text));
        } catch {
          return;
        }
        if (!parsed.success) return;
        findCancelTarget(runtime.db, parsed.data.data)
          .then((taskId) => {
            if (taskId === null) return;
            const killed = running.cancel(taskId);
            if (killed > 0) runtime.log.info({ taskId, killed }, 'killed sandbox jobs of a cancelled task');
          })
          .catch((failure: unknown) =>
            runtime.log.error({ err: failure }, 'could not handle a cancel request'),
          );
      },
    },
  );
  // A job may run up to TANDEM_SANDBOX_MAX_TIMEOUT_MS: the consumer framework heartbeats it, so the ack
  // wait stays the short TANDEM_ACK_WAIT_MS (how long a dead runner's job waits for another).
  const consumer = await runtime.start(
    sandboxRunRequested,
    {
      db: runtime.db,
      prefix: config.TANDEM_SUBJECT_PREFIX,
      backend,
      ceilings: config,
      running,
      maxAttempts: config.TANDEM_SANDBOX_MAX_ATTEMPTS,
      onRun: (result, language) => {
        runs.inc({ language, outcome: result.outcome });
        seconds.observe({ language }, result.durationMs / 1000);
      },
    },
    { concurrency: config.TANDEM_SANDBOX_CONCURRENCY },
  );
  runtime.onStop(async () => {
    cancels.unsubscribe();
    await consumer.stop();
  });
}

/**
 * The replacement of a `sandbox.run-completed` the relay could not publish: the same run with a failed
 * outcome (`output_limit` when it was too large, else `sandbox_error`), no output, and the reason with
 * `BUS.OUTBOX_UNPUBLISHABLE` in `errorMessage`. Other rows get no replacement.
 */
export function unpublishableRunResult(prefix: string, row: UnpublishableOutboxRow): OutboxMessage[] {
  if (row.subject !== subjectFor(prefix, SandboxRunCompleted.subjectSuffix)) return [];
  const parsed = SandboxRunCompleted.envelope.safeParse(row.payload);
  if (!parsed.success) return [];
  const run = parsed.data;
  const { message } = outboxEvent(
    { prefix, publisher: 'sandbox-runner' },
    SandboxRunCompleted,
    {
      ...run.data,
      outcome: row.error.code === ErrorCodes.BUS_PAYLOAD_TOO_LARGE ? 'output_limit' : 'sandbox_error',
      stdout: '',
      stderr: '',
      stdoutTruncated: run.data.stdoutTruncated || run.data.stdout.length > 0,
      stderrTruncated: run.data.stderrTruncated || run.data.stderr.length > 0,
      value: null,
      files: [],
      filesTruncated: run.data.filesTruncated === true || (run.data.files?.length ?? 0) > 0,
      errorMessage: `${ErrorCodes.BUS_OUTBOX_UNPUBLISHABLE}: the run's result could not be published (${row.error.code}: ${row.error.message})`,
    },
    { correlationId: run.correlationId, causationId: run.causationId ?? null },
  );
  return [message];
}
