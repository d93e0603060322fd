import {
  ApprovalDecided,
  ApprovalsDecided,
  LearningPatternsQuery,
  LearningPatternsReply,
  PlanFailed,
  PlanProposed,
  PublicSubjects,
  SandboxRunCompleted,
  TaskCancelRequestedCloudEvent,
  querySubjectFor,
} from '@tandem/contracts';
import { Counter, type ServiceRuntime } from '@tandem/service-kit';
import type { AdvanceDeps, CodeModel } from './advance.js';
import type { ExecutorConfig } from './config.js';
import { sweepDeadLetters } from './dead-letter-sweep.js';
import { applyEarlyCancels } from './early-cancels.js';
import { sweepDeadlines } from './deadlines.js';
import { sweepStaleReplanning, sweepStaleSteps, sweepStuckTasks } from './stale-work.js';
import type { CodePattern } from './domain/progress.js';
import { EXECUTOR_APPROVAL_CONSUMER, handleApprovalDecided } from './handlers/approval-decided.js';
import { EXECUTOR_APPROVALS_CONSUMER, handleApprovalsDecided } from './handlers/approvals-decided.js';
import { EXECUTOR_PLAN_FAILED_CONSUMER, handlePlanFailed } from './handlers/plan-failed.js';
import { EXECUTOR_PLAN_CONSUMER, handlePlanProposed } from './handlers/plan-proposed.js';
import { EXECUTOR_SANDBOX_CONSUMER, handleSandboxRunCompleted } from './handlers/sandbox-run-completed.js';
import { EXECUTOR_CANCEL_CONSUMER, handleTaskCancelRequested } from './handlers/task-cancel-requested.js';
import type { SecretStore } from './secrets.js';
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
  const { db, kick, bus } = runtime;
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
  const advance: AdvanceDeps = {
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
    maxDeliver: config.TANDEM_MAX_DELIVER,
    maxFixAttempts: config.TANDEM_CODE_FIX_ATTEMPTS,
    maxReplans: config.TANDEM_MAX_REPLANS,
    maxCodeChars: config.TANDEM_RUN_CODE_MAX_CHARS,
    kick,
    onTaskFinished: (status, kind) => outcomes.inc({ status, kind }),
  };
  const common = {
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: config.TANDEM_EXECUTOR_CONCURRENCY,
  };
  const consumers = [
    await runtime.consume({
      ...common,
      durable: EXECUTOR_PLAN_CONSUMER,
      subject: PlanProposed.subjectSuffix,
      schema: PlanProposed.envelope,
      messageId: (e) => e.id,
      handle: (e, c) => handlePlanProposed(advance, e, c),
    }),
    await runtime.consume({
      ...common,
      durable: EXECUTOR_APPROVAL_CONSUMER,
      subject: ApprovalDecided.subjectSuffix,
      schema: ApprovalDecided.envelope,
      messageId: (e) => e.id,
      handle: (e, c) => handleApprovalDecided(advance, e, c),
    }),
    await runtime.consume({
      ...common,
      durable: EXECUTOR_APPROVALS_CONSUMER,
      subject: ApprovalsDecided.subjectSuffix,
      schema: ApprovalsDecided.envelope,
      messageId: (e) => e.id,
      handle: (e, c) => handleApprovalsDecided(advance, e, c),
    }),
    await runtime.consume({
      ...common,
      durable: EXECUTOR_SANDBOX_CONSUMER,
      subject: SandboxRunCompleted.subjectSuffix,
      schema: SandboxRunCompleted.envelope,
      messageId: (e) => e.id,
      handle: (e, c) => handleSandboxRunCompleted(advance, e, c),
    }),
    await runtime.consume({
      ...common,
      durable: EXECUTOR_PLAN_FAILED_CONSUMER,
      subject: PlanFailed.subjectSuffix,
      schema: PlanFailed.envelope,
      messageId: (e) => e.id,
      handle: (e, c) => handlePlanFailed(advance, e, c),
    }),
    await runtime.consume({
      ...common,
      durable: EXECUTOR_CANCEL_CONSUMER,
      subject: PublicSubjects.taskCancelRequested,
      schema: TaskCancelRequestedCloudEvent,
      messageId: (event) => `ce:${JSON.stringify([event.source, event.id])}`,
      handle: (event, context) =>
        handleTaskCancelRequested(
          { ...advance, earlyCancelTtlMs: config.TANDEM_EARLY_CANCEL_TTL_MS },
          event,
          context,
        ),
    }),
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
      await sweepDeadlines(advance, runtime.log);
      await applyEarlyCancels(advance, runtime.log);
      await sweepStaleSteps(advance, runtime.log, {
        leaseMs: config.TANDEM_STEP_LEASE_MS,
        leaseRetries: config.TANDEM_STEP_LEASE_RETRIES,
        sandboxTimeoutMs: config.TANDEM_STEP_TIMEOUT_MS,
        httpTimeoutMs: config.TANDEM_HTTP_TIMEOUT_MS,
      });
      await sweepStaleReplanning(advance, runtime.log, { leaseMs: config.TANDEM_PLANNING_LEASE_MS });
      await sweepStuckTasks(advance, runtime.log, { quietMs: config.TANDEM_STUCK_AFTER_MS, backlog });
    }),
    every(config.TANDEM_DEAD_LETTER_SWEEP_MS, runtime.log, 'dead-letter sweep', () =>
      sweepDeadLetters(advance, runtime.log),
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
