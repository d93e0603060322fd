import { ApprovalDecided, PlanFailed, PlanProposed, SandboxRunCompleted } from '@tandem/contracts';
import type { RoleClient } from '@tandem/models';
import { Counter, type ServiceRuntime } from '@tandem/service-kit';
import type { AdvanceDeps } from './advance.js';
import type { ExecutorConfig } from './config.js';
import { EXECUTOR_APPROVAL_CONSUMER, handleApprovalDecided } from './handlers/approval-decided.js';
import { EXECUTOR_PLAN_FAILED_CONSUMER, handlePlanFailed } from './handlers/plan-failed.js';
import { EXECUTOR_PLAN_CONSUMER, handlePlanProposed } from './handlers/plan-proposed.js';
import { EXECUTOR_SANDBOX_CONSUMER, handleSandboxRunCompleted } from './handlers/sandbox-run-completed.js';

/** The executor: runs approved steps in order, asks the code model for code, owns the task's outcome. */
export async function createExecutor(deps: {
  runtime: ServiceRuntime;
  config: ExecutorConfig;
  codeModel: RoleClient;
}): Promise<void> {
  const { runtime, config } = deps;
  const { db, kick } = runtime;
  const outcomes = new Counter({
    name: 'tandem_tasks_finished_total',
    help: 'Tasks finished by status and kind',
    labelNames: ['status', 'kind'],
    registers: [runtime.metrics.registry],
  });
  const advance: AdvanceDeps = {
    db,
    log: runtime.log,
    prefix: config.TANDEM_SUBJECT_PREFIX,
    codeModel: { complete: (request) => deps.codeModel.complete(request) },
    sandboxLimits: {
      timeoutMs: config.TANDEM_STEP_TIMEOUT_MS,
      maxOutputBytes: config.TANDEM_STEP_MAX_OUTPUT_BYTES,
      memoryMb: config.TANDEM_STEP_MEMORY_MB,
    },
    // A redelivery comes after the ack wait (5 min); a claim older than 4 min is then taken over.
    claimStaleMs: 4 * 60_000,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    kick,
    onTaskFinished: (status, kind) => outcomes.inc({ status, kind }),
  };
  const common = {
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: config.TANDEM_EXECUTOR_CONCURRENCY,
    ackWaitMs: 5 * 60_000,
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
  ];
  runtime.onStop(async () => {
    await Promise.all(consumers.map((consumer) => consumer.stop()));
  });
}
