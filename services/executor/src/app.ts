import { LearningPatternsQuery, LearningPatternsReply, querySubjectFor } from '@tandem/contracts';
import { Counter, type ServiceRuntime } from '@tandem/service-kit';
import type { ExecutorConfig } from './config.js';
import { sweepDeadLetters } from './dead-letter-sweep.js';
import { sweepDeadlines } from './deadlines.js';
import type { CodeModel, ExecutorDeps } from './deps.js';
import type { CodePattern } from './domain/progress.js';
import { applyEarlyCancels } from './early-cancels.js';
import { approvalBatchDecided } from './handlers/approval-batch-decided.js';
import { approvalDecided } from './handlers/approval-decided.js';
import { planFailed } from './handlers/plan-failed.js';
import { planProposed } from './handlers/plan-proposed.js';
import { sandboxRunCompleted } from './handlers/sandbox-run-completed.js';
import { taskCancelRequested } from './handlers/task-cancel-requested.js';
import type { SecretStore } from './secrets.js';
import { sweepStaleReplanning, sweepStaleSteps, sweepStuckTasks } from './stale-work.js';
import { createHttpRunner, type HttpClient } from './tools/http.js';

/** The executor: runs approved steps in order, asks the code model for code, owns the task's outcome. */
export async function createExecutor(deps: {
  runtime: ServiceRuntime;
  config: ExecutorConfig;
  codeModel: CodeModel;
  httpClient: HttpClient;
  secrets: SecretStore;
}): Promise<void> {
  const { runtime, config } = deps;
  const { db, bus } = runtime;
  const prefix = config.TANDEM_SUBJECT_PREFIX;
  const outcomes = new Counter({
    name: 'tandem_tasks_finished_total',
    help: 'Tasks finished by status and kind',
    labelNames: ['status', 'kind'],
    registers: [runtime.metrics.registry],
  });
  const codePatterns = async (language: string): Promise<CodePattern[]> => {
    try {
      const query = LearningPatternsQuery.parse({
        kind: 'code',
        scope: `run_code:${language}`,
        types: ['code_pattern', 'error_recovery'],
        limit: 5,
      });
      const reply = await bus.nc.request(
        querySubjectFor(prefix, 'learning-patterns'),
        new TextEncoder().encode(JSON.stringify(query)),
        { timeout: config.TANDEM_LEARNING_QUERY_TIMEOUT_MS },
      );
      const parsed = LearningPatternsReply.safeParse(JSON.parse(new TextDecoder().decode(reply.data)));
      return parsed.success ? parsed.data.patterns : [];
    } catch (error) {
      runtime.log.debug({ err: error }, 'no learned code patterns in time; generating without them');
      return [];
    }
  };
  const executor: ExecutorDeps = {
    db,
    log: runtime.log,
    prefix,
    codeModel: deps.codeModel,
    http: createHttpRunner({ client: deps.httpClient, secrets: deps.secrets }),
    codePatterns,
    sandboxLimits: {
      timeoutMs: config.TANDEM_STEP_TIMEOUT_MS,
      maxOutputBytes: config.TANDEM_STEP_MAX_OUTPUT_BYTES,
      memoryMb: config.TANDEM_STEP_MEMORY_MB,
    },
    workspace: {
      maxFileBytes: config.TANDEM_WORKSPACE_MAX_FILE_BYTES,
      maxTotalBytes: config.TANDEM_WORKSPACE_MAX_BYTES,
      maxFiles: config.TANDEM_WORKSPACE_MAX_FILES,
    },
    // The step lease: a live replica renews its claim, so only a stopped replica's claim goes stale.
    claimStaleMs: config.TANDEM_STEP_LEASE_MS,
    maxFixAttempts: config.TANDEM_CODE_FIX_ATTEMPTS,
    maxReplans: config.TANDEM_MAX_REPLANS,
    maxCodeChars: config.TANDEM_RUN_CODE_MAX_CHARS,
    earlyCancelTtlMs: config.TANDEM_EARLY_CANCEL_TTL_MS,
    onTaskFinished: (status, kind) => outcomes.inc({ status, kind }),
  };
  // Every consumer: concurrency TANDEM_EXECUTOR_CONCURRENCY; max_deliver TANDEM_MAX_DELIVER and ack wait
  // TANDEM_ACK_WAIT_MS from the base config (runtime.start applies them).
  const delivery = { concurrency: config.TANDEM_EXECUTOR_CONCURRENCY };
  const consumers = [
    await runtime.start(planProposed, executor, delivery),
    await runtime.start(approvalDecided, executor, delivery),
    await runtime.start(approvalBatchDecided, executor, delivery),
    await runtime.start(sandboxRunCompleted, executor, delivery),
    await runtime.start(planFailed, executor, delivery),
    await runtime.start(taskCancelRequested, executor, delivery),
  ];
  // Messages not yet delivered to any executor: while there are some, no task is judged stuck.
  const backlog = async (): Promise<number> => {
    let pending = 0;
    for (const consumer of consumers) {
      const info = await bus.jsm.consumers.info(consumer.stream, consumer.name);
      pending += info.num_pending;
    }
    return pending;
  };
  const sweepers = [
    every(config.TANDEM_DEADLINE_SWEEP_MS, runtime.log, 'deadline sweep', async () => {
      await sweepDeadlines(executor, runtime.log);
      await applyEarlyCancels(executor, runtime.log);
      await sweepStaleSteps(executor, runtime.log, {
        leaseMs: config.TANDEM_STEP_LEASE_MS,
        leaseRetries: config.TANDEM_STEP_LEASE_RETRIES,
        sandboxTimeoutMs: config.TANDEM_STEP_TIMEOUT_MS,
        httpTimeoutMs: config.TANDEM_HTTP_TIMEOUT_MS,
      });
      await sweepStaleReplanning(executor, runtime.log, { leaseMs: config.TANDEM_PLANNING_LEASE_MS });
      await sweepStuckTasks(executor, runtime.log, { quietMs: config.TANDEM_STUCK_AFTER_MS, backlog });
    }),
    every(config.TANDEM_DEAD_LETTER_SWEEP_MS, runtime.log, 'dead-letter sweep', () =>
      sweepDeadLetters(executor, runtime.log),
    ),
  ];
  runtime.onStop(async () => {
    for (const sweeper of sweepers) clearInterval(sweeper);
    await Promise.all(consumers.map((consumer) => consumer.stop()));
  });
}

/** Runs `work` every `ms` (never two at once in this process); a failure is logged, the next run retries. */
function every(
  ms: number,
  log: ServiceRuntime['log'],
  name: string,
  work: () => Promise<unknown>,
): ReturnType<typeof setInterval> {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    work()
      .catch((error: unknown) => log.error({ err: error }, `${name} failed`))
      .finally(() => {
        running = false;
      });
  }, ms);
  timer.unref();
  return timer;
}
