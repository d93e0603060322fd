import type { UnpublishableOutboxRow } from '@tandem/bus';
import {
  ErrorCodes,
  PlanProposed,
  subjectFor,
  TaskAccepted,
  TaskCancelRequestedCloudEvent,
  TaskOutcomeCloudEvent,
  TaskReplanRequested,
  TaskRequestedCloudEvent,
  PublicSubjects,
  toolRegistry,
  DEFAULT_TOOL_CALL_LIMITS,
  type ToolDefinition,
} from '@tandem/contracts';
import { Counter, Histogram, toolCheckContextFrom, type ServiceRuntime } from '@tandem/service-kit';

import type { PlannerConfig } from './config.js';
import { handleReplanRequested, REPLAN_CONSUMER } from './handlers/replan-requested.js';
import type { OutboxMessage } from '@tandem/db';
import {
  handleTaskAccepted,
  planFailedMessage,
  PLANNING_CONSUMER,
  type PlanningDeps,
} from './handlers/task-accepted.js';
import {
  handleCancelRequested,
  handleTaskOutcome,
  PLANNER_CANCEL_CONSUMER,
  PLANNER_OUTCOME_CONSUMERS,
} from './handlers/task-lifecycle.js';
import { cloudEventMessageId, handleTaskRequested, INTAKE_CONSUMER } from './handlers/task-requested.js';
import { registerPlanRoutes } from './http/plan-routes.js';
import { registerTaskRoutes } from './http/tasks.js';
import type { ValidatedStep } from './plan-store.js';
import { createPatternCache } from './patterns.js';
import { createPlanningTakeovers } from './stale-planning.js';
import type { PlanningModel } from './planning-loop.js';

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
  const { db, bus, kick } = runtime;
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
    kick,
    onAccepted: (created) => tasksAccepted.inc({ channel: 'http', created: String(created) }),
  });
  registerPlanRoutes(runtime.http, {
    db,
    prefix,
    kick,
    registry,
    checkContext,
    limits: planLimits,
    estimateStepCostUsd,
  });

  const intake = await runtime.consume({
    durable: INTAKE_CONSUMER,
    subject: PublicSubjects.taskRequested,
    schema: TaskRequestedCloudEvent,
    messageId: cloudEventMessageId,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: config.TANDEM_PLANNER_CONCURRENCY,
    handle: async (event, context) => {
      await handleTaskRequested(
        { db, prefix, kick, sourceSecrets: config.TANDEM_SOURCE_SECRETS },
        event,
        context,
      );
      tasksAccepted.inc({ channel: 'nats', created: 'unknown' });
    },
  });
  const patternCache = createPatternCache(config.TANDEM_LEARNING_CACHE_MS);
  const planningDeps = (context: { working: () => void }): PlanningDeps => ({
    db,
    log: runtime.log,
    prefix,
    registry,
    checkContext,
    estimateStepCostUsd,
    model: {
      complete: async (request) => {
        context.working();
        const answer = await deps.planningModel.complete(request);
        context.working();
        return answer;
      },
    },
    request: async (subject, payload, timeoutMs) =>
      (await bus.nc.request(subject, payload, { timeout: timeoutMs })).data,
    patternCache,
    limits: {
      ...planLimits,
      maxRepairs: config.TANDEM_PLANNER_MAX_REPAIRS,
      learningTimeoutMs: config.TANDEM_LEARNING_QUERY_TIMEOUT_MS,
      maxDeliver: config.TANDEM_MAX_DELIVER,
    },
    kick,
    planningLeaseMs: config.TANDEM_PLANNING_LEASE_MS,
    onPlanned: (outcome, figures) => {
      plans.inc({ outcome });
      repairs.observe(figures.repairs);
      planningSeconds.observe(figures.ms / 1000);
      if (figures.quality !== null) quality.observe(figures.quality);
    },
  });
  const planning = await runtime.consume({
    durable: PLANNING_CONSUMER,
    subject: TaskAccepted.subjectSuffix,
    schema: TaskAccepted.envelope,
    messageId: (envelope) => envelope.id,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: config.TANDEM_PLANNER_CONCURRENCY,
    // A planning round may take several model calls: the consumer framework heartbeats it meanwhile.
    handle: (envelope, context) => handleTaskAccepted(planningDeps(context), envelope, context),
  });
  const replanning = await runtime.consume({
    durable: REPLAN_CONSUMER,
    subject: TaskReplanRequested.subjectSuffix,
    schema: TaskReplanRequested.envelope,
    messageId: (envelope) => envelope.id,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: config.TANDEM_PLANNER_CONCURRENCY,
    handle: (envelope, context) => handleReplanRequested(planningDeps(context), envelope, context),
  });
  const cancels = await runtime.consume({
    durable: PLANNER_CANCEL_CONSUMER,
    subject: PublicSubjects.taskCancelRequested,
    schema: TaskCancelRequestedCloudEvent,
    messageId: (event) => cloudEventMessageId(event),
    maxDeliver: config.TANDEM_MAX_DELIVER,
    handle: (event, context) => handleCancelRequested({ db }, event, context),
  });
  const outcomes = await Promise.all(
    (
      [
        [PLANNER_OUTCOME_CONSUMERS.completed, PublicSubjects.taskCompleted],
        [PLANNER_OUTCOME_CONSUMERS.failed, PublicSubjects.taskFailed],
        [PLANNER_OUTCOME_CONSUMERS.cancelled, PublicSubjects.taskCancelled],
      ] as const
    ).map(([durable, subject]) =>
      runtime.consume({
        durable,
        subject,
        schema: TaskOutcomeCloudEvent,
        messageId: (event) => event.id,
        maxDeliver: config.TANDEM_MAX_DELIVER,
        handle: (event, context) =>
          handleTaskOutcome({ db }, event, { consumer: durable, messageId: context.messageId }),
      }),
    ),
  );
  const takeovers = createPlanningTakeovers({
    deps: planningDeps({ working: () => undefined }),
    log: runtime.log,
    leaseMs: config.TANDEM_PLANNING_LEASE_MS,
    concurrency: config.TANDEM_PLANNER_CONCURRENCY,
    backlog: async () => (await bus.jsm.consumers.info(planning.stream, planning.name)).num_pending,
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
    await Promise.all([
      intake.stop(),
      planning.stop(),
      replanning.stop(),
      cancels.stop(),
      ...outcomes.map((consumer) => consumer.stop()),
    ]);
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
