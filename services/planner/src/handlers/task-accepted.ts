import {
  ErrorCodes,
  PlanFailed,
  TandemError,
  TaskBudget,
  TaskModelPreference,
  type Envelope,
  type EventData,
  type ErrorShape,
  type LearningPatternsReply,
  type TaskAccepted,
  type TaskRequestRef,
  type ToolCheckContext,
  type ToolDefinition,
} from '@tandem/contracts';
import {
  UTC_NOW as NOW,
  enqueueOutboxSql,
  markProcessedSql,
  modelUseOfTask,
  poolSql,
  sqlTransaction,
  type Db,
  type Sql,
  toJsonText,
} from '@tandem/db';
import { outboxEvent, type Log } from '@tandem/service-kit';
import { z } from 'zod';
import { initialMessages, type ChatMessage } from '../domain/planning.js';
import { planQuality, riskMixOf } from '../domain/quality.js';
import { fetchPatterns, type PatternCache, type Requester } from '../patterns.js';
import { storePlanVersion, type ValidatedStep } from '../plan-store.js';
import { planWithModel, type PlanningModel } from '../planning-loop.js';

type TaskAcceptedData = EventData<typeof TaskAccepted>;

/** Dependencies of the planning handlers. */
export interface PlanningDeps {
  db: Db;
  log: Log;
  prefix: string;
  model: PlanningModel;
  registry: ReadonlyMap<string, ToolDefinition>;
  checkContext: ToolCheckContext;
  request: Requester;
  /** Recent learned patterns (optional). */
  patternCache?: PatternCache;
  /** Estimated model cost of running one step (a `run_code` with `spec` costs a code-model call). */
  estimateStepCostUsd: (step: ValidatedStep) => number;
  limits: {
    maxRepairs: number;
    maxSteps: number;
    maxArgumentBytes: number;
    maxDepth: number;
    learningTimeoutMs: number;
    maxDeliver: number;
  };
  onPlanned?: (
    outcome: 'proposed' | 'failed',
    figures: { repairs: number; ms: number; quality: number | null },
  ) => void;
  kick: () => void;
  /**
   * The planning lease (TANDEM_PLANNING_LEASE_MS): while a task is planned or re-planned its row is
   * renewed every third of it, so a planner's sweep takes over only a task whose planner stopped.
   */
  planningLeaseMs?: number;
}

/**
 * Renews a task's planning lease (its `updatedAt`) every third of the lease until the returned function
 * is called; nothing when the deps have no lease.
 */
export function holdPlanningLease(
  deps: Pick<PlanningDeps, 'db' | 'log' | 'planningLeaseMs'>,
  taskId: string,
): () => void {
  const leaseMs = deps.planningLeaseMs;
  if (leaseMs === undefined) return () => undefined;
  const timer = setInterval(
    () => {
      sqlTransaction(
        deps.db,
        (sql) =>
          sql.query(
            `UPDATE "Task" SET "updatedAt" = ${NOW} WHERE "id" = $1::uuid AND "status" IN ('accepted', 'planning', 'planned')`,
            [taskId],
          ),
        { durable: false },
      ).catch((error: unknown) => deps.log.warn({ err: error, taskId }, 'could not renew a planning lease'));
    },
    Math.max(50, Math.floor(leaseMs / 3)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

const CONSUMER = 'planner-planning';

/** Consumer name of the planning handler (wire name: renaming it creates a new durable consumer). */
export const PLANNING_CONSUMER = CONSUMER;

const PlanningTaskRow = z.object({
  id: z.string(),
  source: z.string(),
  externalId: z.string(),
  agentId: z.string().nullable(),
  kind: z.string(),
  goal: z.string(),
  input: z.unknown(),
  status: z.string(),
  budget: z.unknown(),
  preferences: z.unknown(),
  deadline: z.date().nullable(),
  processed: z.boolean(),
});

/**
 * The stored task fields planning needs, parsed (never cast) from their JSON columns; with `inbox`, also
 * whether that consumer already handled that message (`processed`), in the same statement.
 */
export async function loadPlanningTask(
  db: Db,
  taskId: string,
  inbox?: { consumer: string; messageId: string },
) {
  const result = await poolSql(db).query(
    `SELECT t."id"::text AS "id", t."source", t."externalId", t."agentId", t."kind", t."goal", t."input", t."status",
            t."budget", t."preferences", (t."deadline" AT TIME ZONE 'UTC') AS "deadline",
            EXISTS (SELECT 1 FROM "ProcessedMessage" WHERE "consumer" = $2 AND "messageId" = $3) AS "processed"
       FROM "Task" t WHERE t."id" = $1::uuid`,
    [taskId, inbox?.consumer ?? '', inbox?.messageId ?? ''],
  );
  const raw = result.rows[0];
  if (!raw) return null;
  const task = PlanningTaskRow.parse(raw);
  const budget = TaskBudget.safeParse(task.budget ?? undefined);
  const preferences = TaskModelPreference.safeParse(task.preferences ?? undefined);
  return {
    ...task,
    budget: budget.success ? budget.data : undefined,
    preferences: preferences.success ? preferences.data : undefined,
  };
}

/** Whether a consumer already handled a message (read before any model call, outside a transaction). */
export async function alreadyProcessed(db: Db, consumer: string, messageId: string): Promise<boolean> {
  const result = await poolSql(db).query(
    `SELECT 1 FROM "ProcessedMessage" WHERE "consumer" = $1 AND "messageId" = $2`,
    [consumer, messageId],
  );
  return result.rows.length > 0;
}

/**
 * Whether a cancel request that came before the task was stored names it and has not expired (the
 * executor's EarlyCancel rows, read here so that no model call is paid for a cancelled task).
 */
export async function cancelledBeforeArrival(
  db: Db,
  task: { id: string; source: string; externalId: string },
): Promise<boolean> {
  const result = await poolSql(db).query(
    `SELECT 1 FROM "EarlyCancel"
      WHERE "expiresAt" > ${NOW} AND ("taskId" = $1::uuid OR ("source" = $2 AND "externalId" = $3)) LIMIT 1`,
    [task.id, task.source, task.externalId],
  );
  return result.rows.length > 0;
}

/** Marks a message processed in a transaction of its own (when the handler has nothing else to write). */
export async function markProcessedAlone(db: Db, consumer: string, messageId: string): Promise<void> {
  await sqlTransaction(db, async (sql) => {
    await markProcessedSql(sql, consumer, messageId);
  });
}

/** The plan-level success rate of the learned strategies, or null without history. */
export function strategySuccess(patterns: LearningPatternsReply['patterns']): number | null {
  const ok = patterns.reduce((sum, pattern) => sum + pattern.successCount, 0);
  const failed = patterns.reduce((sum, pattern) => sum + pattern.failureCount, 0);
  return ok + failed === 0 ? null : ok / (ok + failed);
}

/** Stores a plan found by the model as `version` and enqueues `plan.proposed`; false when the task moved on. */
export async function storeModelPlan(
  deps: PlanningDeps,
  sql: Sql,
  input: {
    task: { id: string; kind: string; agentId: string | null; request: TaskRequestRef };
    budget: TaskBudget | undefined;
    version: number;
    origin: 'model' | 'replan';
    supersedes: string | null;
    steps: ValidatedStep[];
    attempts: number;
    invalidCalls: number;
    models: string[];
    patterns: LearningPatternsReply['patterns'];
    planningMs: number;
    causationId: string;
  },
): Promise<{ planId: string; quality: number }> {
  const estimatedCostUsd = input.steps.reduce((sum, step) => sum + deps.estimateStepCostUsd(step), 0);
  const factors = {
    structural: 1,
    rejections: input.attempts - 1,
    invalidCalls: input.invalidCalls,
    stepCount: input.steps.length,
    maxSteps: deps.limits.maxSteps,
    riskMix: riskMixOf(input.steps.map((step) => step.tool.risk)),
    estimatedCostUsd,
    budgetUsd: input.budget?.maxCostUsd ?? null,
    strategySuccess: strategySuccess(input.patterns),
  };
  const score = planQuality(factors);
  const { planId } = await storePlanVersion(
    sql,
    { prefix: deps.prefix },
    {
      task: input.task,
      version: input.version,
      origin: input.origin,
      supersedes: input.supersedes,
      editedBy: null,
      steps: input.steps,
      models: input.models,
      strategy: input.patterns.length > 0 ? 'with-patterns' : 'plain',
      patternIds: input.patterns.map((pattern) => pattern.id),
      attempts: input.attempts,
      invalidCalls: input.invalidCalls,
      planningMs: input.planningMs,
      quality: { score, factors },
      estimatedCostUsd,
      causationId: input.causationId,
    },
  );
  return { planId, quality: score };
}

/** Enqueues `plan.failed` for the executor to turn into the task's outcome. */
export function planFailedMessage(
  deps: Pick<PlanningDeps, 'prefix'>,
  task: { id: string; kind: string; agentId: string | null; request: TaskRequestRef },
  error: ErrorShape,
  causationId: string,
) {
  return outboxEvent(
    { prefix: deps.prefix, publisher: 'planner' },
    PlanFailed,
    { taskId: task.id, request: task.request, kind: task.kind, agentId: task.agentId, error },
    { correlationId: task.id, causationId },
  ).message;
}

/**
 * Plans an accepted task: asks the planning model (outside any transaction), validates every call,
 * sends rejections back a bounded number of times, then stores the plan and its event in one transaction.
 */
export async function handleTaskAccepted(
  deps: PlanningDeps,
  envelope: Envelope<TaskAcceptedData>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const { db } = deps;
  const data = envelope.data;
  const task = await loadPlanningTask(db, data.taskId, { consumer: CONSUMER, messageId: context.messageId });
  if (task?.processed) return;
  if (!task)
    throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${data.taskId} does not exist`, {
      retryable: true,
    });
  if (task.status !== 'accepted' && task.status !== 'planning') {
    await markProcessedAlone(db, CONSUMER, context.messageId);
    return;
  }
  const taskRef = { id: data.taskId, kind: data.kind, agentId: data.agentId, request: data.request };
  if (await cancelledBeforeArrival(db, task)) {
    // The executor kept a cancel that came before the task, and ends the task `cancelled` itself.
    await sqlTransaction(db, async (sql) => {
      if (!(await markProcessedSql(sql, CONSUMER, context.messageId))) return;
      await sql.query(
        `UPDATE "Task" SET "status" = 'cancelled', "updatedAt" = ${NOW}
          WHERE "id" = $1::uuid AND "status" IN ('accepted', 'planning')`,
        [data.taskId],
      );
    });
    context.log.info({ taskId: data.taskId }, 'task cancelled before it arrived; not planned');
    return;
  }
  const releaseLease = holdPlanningLease(deps, data.taskId);
  try {
    const started = Date.now();
    const [, { patterns }, spent] = await Promise.all([
      // Informational (the task is being planned): not worth a WAL flush; a crash just leaves it `accepted`.
      sqlTransaction(
        db,
        (sql) =>
          sql.query(
            `UPDATE "Task" SET "status" = 'planning', "updatedAt" = ${NOW} WHERE "id" = $1::uuid AND "status" = 'accepted'`,
            [data.taskId],
          ),
        { durable: false },
      ),
      fetchPatterns(
        {
          request: deps.request,
          prefix: deps.prefix,
          timeoutMs: deps.limits.learningTimeoutMs,
          log: context.log,
          ...(deps.patternCache === undefined ? {} : { cache: deps.patternCache }),
        },
        { kind: data.kind, agentId: data.agentId, limit: 5 },
      ),
      task.budget === undefined
        ? Promise.resolve({ tokens: 0, costUsd: 0, calls: 0 })
        : modelUseOfTask(db, data.taskId),
    ]);
    const messages: ChatMessage[] = initialMessages({
      goal: data.goal,
      input: data.input,
      kind: data.kind,
      patterns,
    });
    const result = await planWithModel(
      { ...deps, log: context.log },
      {
        taskId: data.taskId,
        messages,
        keyPrefix: `plan:${data.taskId}:v1`,
        budget: task.budget,
        preference: task.preferences,
        deadline: task.deadline,
        mayRetry: context.deliveryCount < deps.limits.maxDeliver,
        spent,
      },
    );
    if (result.kind === 'retry')
      // The code is the wire shape's string: fromShape keeps it when declared (INTERNAL.ERROR otherwise).
      throw TandemError.fromShape({ ...result.error, retryable: true }, { cause: result.cause });
    if (result.kind === 'cancelled') {
      await markProcessedAlone(db, CONSUMER, context.messageId);
      context.log.info({ taskId: data.taskId }, 'task cancelled while planning; no plan stored');
      return;
    }
    const planningMs = Date.now() - started;
    if (result.kind === 'planned') {
      const stored = await sqlTransaction(db, async (sql) => {
        if (!(await markProcessedSql(sql, CONSUMER, context.messageId))) return null;
        const updated = await sql.query(
          `UPDATE "Task" SET "status" = 'planned', "updatedAt" = ${NOW}
          WHERE "id" = $1::uuid AND "status" IN ('accepted', 'planning')`,
          [data.taskId],
        );
        if (updated.rowCount === 0) return null;
        return storeModelPlan(deps, sql, {
          task: taskRef,
          budget: task.budget,
          version: 1,
          origin: 'model',
          supersedes: null,
          steps: result.steps,
          attempts: result.attempts,
          invalidCalls: result.invalidCalls,
          models: result.models,
          patterns,
          planningMs,
          causationId: envelope.id,
        });
      });
      deps.kick();
      if (stored) {
        deps.onPlanned?.('proposed', {
          repairs: result.attempts - 1,
          ms: planningMs,
          quality: stored.quality,
        });
        context.log.info(
          {
            taskId: data.taskId,
            planId: stored.planId,
            steps: result.steps.length,
            repairs: result.attempts - 1,
          },
          'plan proposed',
        );
      }
      return;
    }

    const error: ErrorShape = { ...result.error, retryable: false };
    await sqlTransaction(db, async (sql) => {
      if (!(await markProcessedSql(sql, CONSUMER, context.messageId))) return;
      const updated = await sql.query(
        `UPDATE "Task" SET "status" = 'failed', "error" = $2::jsonb, "updatedAt" = ${NOW}
        WHERE "id" = $1::uuid AND "status" IN ('accepted', 'planning')`,
        [data.taskId, toJsonText(error)],
      );
      if (updated.rowCount === 0) return;
      await enqueueOutboxSql(sql, planFailedMessage(deps, taskRef, error, envelope.id));
    });
    deps.kick();
    deps.onPlanned?.('failed', { repairs: Math.max(0, result.attempts - 1), ms: planningMs, quality: null });
    context.log.warn({ taskId: data.taskId, code: error.code }, 'planning failed');
  } finally {
    releaseLease();
  }
}
