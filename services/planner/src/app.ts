import {
  TaskAccepted,
  TaskRequestedCloudEvent,
  PublicSubjects,
  toolRegistry,
  DEFAULT_TOOL_CALL_LIMITS,
  type ToolDefinition,
} from '@tandem/contracts';
import type { RoleClient } from '@tandem/models';
import { Counter, Histogram, type ServiceRuntime } from '@tandem/service-kit';

import type { PlannerConfig } from './config.js';
import { handleTaskAccepted, PLANNING_CONSUMER } from './handlers/task-accepted.js';
import { cloudEventMessageId, handleTaskRequested, INTAKE_CONSUMER } from './handlers/task-requested.js';
import { registerTaskRoutes } from './http/tasks.js';

/**
 * The planner: accepts tasks from NATS (CloudEvents) and HTTP, plans them with the planning model and
 * publishes `plan.proposed` (or `plan.failed`).
 */
export async function createPlanner(deps: {
  runtime: ServiceRuntime;
  config: PlannerConfig;
  planningModel: RoleClient;
  registry?: ReadonlyMap<string, ToolDefinition>;
}): Promise<void> {
  const { runtime, config } = deps;
  const { db, bus, kick } = runtime;
  const prefix = config.TANDEM_SUBJECT_PREFIX;
  const registry = deps.registry ?? toolRegistry;
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

  const intake = await runtime.consume({
    durable: INTAKE_CONSUMER,
    subject: PublicSubjects.taskRequested,
    schema: TaskRequestedCloudEvent,
    messageId: cloudEventMessageId,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: config.TANDEM_PLANNER_CONCURRENCY,
    handle: async (event, context) => {
      await handleTaskRequested({ db, prefix, kick }, event, context);
      tasksAccepted.inc({ channel: 'nats', created: 'unknown' });
    },
  });
  const planning = await runtime.consume({
    durable: PLANNING_CONSUMER,
    subject: TaskAccepted.subjectSuffix,
    schema: TaskAccepted.envelope,
    messageId: (envelope) => envelope.id,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: config.TANDEM_PLANNER_CONCURRENCY,
    // A planning round may take several model calls; JetStream waits this long before redelivering.
    ackWaitMs: 10 * 60_000,
    handle: (envelope, context) =>
      handleTaskAccepted(
        {
          db,
          log: runtime.log,
          prefix,
          registry,
          model: {
            complete: async (request) => {
              context.working();
              const answer = await deps.planningModel.complete({ ...request, toolChoice: 'required' });
              context.working();
              return answer;
            },
          },
          request: async (subject, payload, timeoutMs) =>
            (await bus.nc.request(subject, payload, { timeout: timeoutMs })).data,
          limits: {
            maxRepairs: config.TANDEM_PLANNER_MAX_REPAIRS,
            maxSteps: config.TANDEM_PLANNER_MAX_STEPS,
            maxArgumentBytes: DEFAULT_TOOL_CALL_LIMITS.maxArgumentBytes,
            maxDepth: DEFAULT_TOOL_CALL_LIMITS.maxDepth,
            learningTimeoutMs: config.TANDEM_LEARNING_QUERY_TIMEOUT_MS,
            maxDeliver: config.TANDEM_MAX_DELIVER,
          },
          kick,
          onPlanned: (outcome, figures) => {
            plans.inc({ outcome });
            repairs.observe(figures.repairs);
            planningSeconds.observe(figures.ms / 1000);
            if (figures.quality !== null) quality.observe(figures.quality);
          },
        },
        envelope,
        context,
      ),
  });
  runtime.onStop(async () => {
    await Promise.all([intake.stop(), planning.stop()]);
  });
}
