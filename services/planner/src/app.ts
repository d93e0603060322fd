import type { UnpublishableOutboxRow } from '@tandem/bus';
import {
  ErrorCodes,
  PlanProposed,
  subjectFor,
  toolRegistry,
  DEFAULT_TOOL_CALL_LIMITS,
  type ToolDefinition,
} from '@tandem/contracts';
import type { OutboxMessage } from '@tandem/db';
import { Counter, Histogram, toolCheckContextFrom, type ServiceRuntime } from '@tandem/service-kit';
import type { PlannerConfig } from './config.js';
import type { PlannerDeps } from './consumers.js';
import { taskAccepted } from './handlers/task-accepted.js';
import { taskCancelRequested } from './handlers/task-cancel-requested.js';
import { taskCancelled } from './handlers/task-cancelled.js';
import { taskCompleted } from './handlers/task-completed.js';
import { taskFailed } from './handlers/task-failed.js';
import { taskReplanRequested } from './handlers/task-replan-requested.js';
import { taskRequested } from './handlers/task-requested.js';
import { registerPlanRoutes } from './http/plan-routes.js';
import { registerTaskRoutes } from './http/tasks.js';
import { createPatternCache } from './patterns.js';
import { planFailedMessage, type ValidatedStep } from './plan-store.js';
import type { PlanningModel } from './planning-loop.js';
import { createPlanningTakeovers } from './stale-planning.js';

/**
 * The planner: accepts tasks from NATS (CloudEvents) and HTTP, plans them with the planning model and
 * publishes `plan.proposed` (or `plan.failed`).
 */
export async function createPlanner(deps: {
  runtime: ServiceRuntime;
  config: PlannerConfig;
  planningModel: PlanningModel;
  /** Estimated model cost of one step (from the code model's price); 0 when prices are unknown. */
  estimateStepCostUsd?: (step: ValidatedStep) => number;
  registry?: ReadonlyMap<string, ToolDefinition>;
}): Promise<void> {
  const { runtime, config } = deps;
  const { db, bus } = runtime;
  const prefix = config.TANDEM_SUBJECT_PREFIX;
  // A plan NATS refuses for good is dead-lettered by the relay; its task gets plan.failed instead of
  // waiting for a plan that never arrives.
  runtime.relay.onUnpublishable((row) => unpublishablePlan(prefix, row));
  const registry = deps.registry ?? toolRegistry;
  const checkContext = toolCheckContextFrom(config);
  const estimateStepCostUsd = deps.estimateStepCostUsd ?? (() => 0);
  const planLimits = {
    maxSteps: config.TANDEM_PLANNER_MAX_STEPS,
    maxArgumentBytes: DEFAULT_TOOL_CALL_LIMITS.maxArgumentBytes,
    maxDepth: DEFAULT_TOOL_CALL_LIMITS.maxDepth,
  };
  const tasksAccepted = new Counter({
    name: 'tandem_tasks_accepted_total',
    help: 'Tasks accepted by channel',
    labelNames: ['channel', 'created'],
    registers: [runtime.metrics.registry],
  });
  const plans = new Counter({
    name: 'tandem_plans_total',
    help: 'Plans by outcome',
    labelNames: ['outcome'],
    registers: [runtime.metrics.registry],
  });
  const repairs = new Histogram({
    name: 'tandem_plan_repairs',
    help: 'Model repair rounds per plan',
    buckets: [0, 1, 2, 3, 5, 10],
    registers: [runtime.metrics.registry],
  });
  const quality = new Histogram({
    name: 'tandem_plan_quality_score',
    help: 'Plan quality score (0..1)',
    buckets: [0.1, 0.25, 0.5, 0.75, 0.9, 1],
    registers: [runtime.metrics.registry],
  });
  const planningSeconds = new Histogram({
    name: 'tandem_planning_duration_seconds',
    help: 'Time from accepted to plan',
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
    registers: [runtime.metrics.registry],
  });

  registerTaskRoutes(runtime.http, {
    db,
    prefix,
    onAccepted: (created) => tasksAccepted.inc({ channel: 'http', created: String(created) }),
  });
  registerPlanRoutes(runtime.http, {
    db,
    prefix,
    registry,
    checkContext,
    limits: planLimits,
    estimateStepCostUsd,
  });

  const consumerDeps: PlannerDeps = {
    db,
    log: runtime.log,
    prefix,
    registry,
    checkContext,
    estimateStepCostUsd,
    // Each planning consumer reports its delivery working around every call (`heartbeating`).
    model: deps.planningModel,
    request: async (subject, payload, timeoutMs) =>
      (await bus.nc.request(subject, payload, { timeout: timeoutMs })).data,
    patternCache: createPatternCache(config.TANDEM_LEARNING_CACHE_MS),
    limits: {
      ...planLimits,
      maxRepairs: config.TANDEM_PLANNER_MAX_REPAIRS,
      learningTimeoutMs: config.TANDEM_LEARNING_QUERY_TIMEOUT_MS,
    },
    planningLeaseMs: config.TANDEM_PLANNING_LEASE_MS,
    onPlanned: (outcome, figures) => {
      plans.inc({ outcome });
      repairs.observe(figures.repairs);
      planningSeconds.observe(figures.ms / 1000);
      if (figures.quality !== null) quality.observe(figures.quality);
    },
    sourceSecrets: config.TANDEM_SOURCE_SECRETS,
    onRequested: () => tasksAccepted.inc({ channel: 'nats', created: 'unknown' }),
  };
  const planning = { concurrency: config.TANDEM_PLANNER_CONCURRENCY };
  const intake = await runtime.start(taskRequested, consumerDeps, planning);
  const accepted = await runtime.start(taskAccepted, consumerDeps, planning);
  const consumers = [
    intake,
    accepted,
    await runtime.start(taskReplanRequested, consumerDeps, planning),
    await runtime.start(taskCancelRequested, consumerDeps),
    await runtime.start(taskCompleted, consumerDeps),
    await runtime.start(taskFailed, consumerDeps),
    await runtime.start(taskCancelled, consumerDeps),
  ];
  const takeovers = createPlanningTakeovers({
    deps: consumerDeps,
    log: runtime.log,
    leaseMs: config.TANDEM_PLANNING_LEASE_MS,
    concurrency: config.TANDEM_PLANNER_CONCURRENCY,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    backlog: async () => (await bus.jsm.consumers.info(accepted.stream, accepted.name)).num_pending,
  });
  let sweeping = false;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    takeovers
      .sweep()
      .catch((error: unknown) => runtime.log.error({ err: error }, 'stale planning sweep failed'))
      .finally(() => {
        sweeping = false;
      });
  }, config.TANDEM_PLANNING_SWEEP_MS);
  sweeper.unref();
  runtime.onStop(async () => {
    clearInterval(sweeper);
    await takeovers.drain();
    await Promise.all(consumers.map((consumer) => consumer.stop()));
  });
}

/**
 * The replacement of a `plan.proposed` the relay could not publish: `plan.failed` for its task with
 * `BUS.OUTBOX_UNPUBLISHABLE` and the reason (the executor turns it into `task.failed`). Other rows get none.
 */
export function unpublishablePlan(prefix: string, row: UnpublishableOutboxRow): OutboxMessage[] {
  if (row.subject !== subjectFor(prefix, PlanProposed.subjectSuffix)) return [];
  const parsed = PlanProposed.envelope.safeParse(row.payload);
  if (!parsed.success) return [];
  const plan = parsed.data.data;
  return [
    planFailedMessage(
      { prefix },
      { id: plan.taskId, kind: plan.kind, agentId: plan.agentId, request: plan.request },
      {
        code: ErrorCodes.BUS_OUTBOX_UNPUBLISHABLE,
        message: `plan ${plan.planId} (version ${plan.version}) could not be published: ${row.error.code}: ${row.error.message}`,
        retryable: false,
      },
      parsed.data.id,
    ),
  ];
}
