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
import { enqueueOutbox, markProcessed, type Db, type Tx } from '@tandem/db';
import { outboxEvent, toJsonInput, type Log } from '@tandem/service-kit';
import { initialMessages, type ChatMessage } from '../domain/planning.js';
import { planQuality, riskMixOf } from '../domain/quality.js';
import { fetchPatterns, type Requester } from '../patterns.js';
import { storePlanVersion, type ValidatedStep } from '../plan-store.js';
import { planWithModel, spentByTask, type PlanningModel } from '../planning-loop.js';

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
}

const CONSUMER = 'planner-planning';

/** Consumer name of the planning handler (wire name: renaming it creates a new durable consumer). */
export const PLANNING_CONSUMER = CONSUMER;

/** The stored task fields planning needs, parsed (never cast) from their JSON columns. */
export async function loadPlanningTask(db: Db, taskId: string) {
  const task = await db.prisma.task.findUnique({ where: { id: taskId } });
  if (!task) return null;
  const budget = TaskBudget.safeParse(task.budget ?? undefined);
  const preferences = TaskModelPreference.safeParse(task.preferences ?? undefined);
  return {
    ...task,
    budget: budget.success ? budget.data : undefined,
    preferences: preferences.success ? preferences.data : undefined,
  };
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
  tx: Tx,
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
    tx,
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
  const already = await db.prisma.processedMessage.findUnique({
    where: { consumer_messageId: { consumer: CONSUMER, messageId: context.messageId } },
  });
  if (already) return;
  const task = await loadPlanningTask(db, data.taskId);
  if (!task)
    throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${data.taskId} does not exist`, {
      retryable: true,
    });
  if (task.status !== 'accepted' && task.status !== 'planning') {
    await db.prisma.$transaction(async (tx) => {
      await markProcessed(tx, CONSUMER, context.messageId);
    });
    return;
  }
  await db.prisma.task.updateMany({
    where: { id: data.taskId, status: 'accepted' },
    data: { status: 'planning' },
  });
  const taskRef = { id: data.taskId, kind: data.kind, agentId: data.agentId, request: data.request };

  const started = Date.now();
  const [{ patterns }, spent] = await Promise.all([
    fetchPatterns(
      {
        request: deps.request,
        prefix: deps.prefix,
        timeoutMs: deps.limits.learningTimeoutMs,
        log: context.log,
      },
      { kind: data.kind, agentId: data.agentId, limit: 5 },
    ),
    spentByTask(db, data.taskId),
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
    throw new TandemError(result.error.code, result.error.message, { retryable: true, cause: result.cause });
  if (result.kind === 'cancelled') {
    await db.prisma.$transaction(async (tx) => {
      await markProcessed(tx, CONSUMER, context.messageId);
    });
    context.log.info({ taskId: data.taskId }, 'task cancelled while planning; no plan stored');
    return;
  }
  const planningMs = Date.now() - started;
  if (result.kind === 'planned') {
    const stored = await db.prisma.$transaction(async (tx) => {
      if (!(await markProcessed(tx, CONSUMER, context.messageId))) return null;
      const updated = await tx.task.updateMany({
        where: { id: data.taskId, status: { in: ['accepted', 'planning'] } },
        data: { status: 'planned' },
      });
      if (updated.count === 0) return null;
      return storeModelPlan(deps, tx, {
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
      deps.onPlanned?.('proposed', { repairs: result.attempts - 1, ms: planningMs, quality: stored.quality });
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
  await db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, CONSUMER, context.messageId))) return;
    const updated = await tx.task.updateMany({
      where: { id: data.taskId, status: { in: ['accepted', 'planning'] } },
      data: { status: 'failed', error: toJsonInput(error) },
    });
    if (updated.count === 0) return;
    await enqueueOutbox(tx, planFailedMessage(deps, taskRef, error, envelope.id));
  });
  deps.kick();
  deps.onPlanned?.('failed', { repairs: Math.max(0, result.attempts - 1), ms: planningMs, quality: null });
  context.log.warn({ taskId: data.taskId, code: error.code }, 'planning failed');
}
