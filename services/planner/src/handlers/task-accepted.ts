import { randomUUID } from 'node:crypto';
import {
  ErrorCodes,
  PlanFailed,
  PlanProposed,
  TandemError,
  toErrorShape,
  type ErrorShape,
  type Envelope,
  type EventData,
  type TaskAccepted,
  type ToolDefinition,
} from '@tandem/contracts';
import { enqueueOutbox, markProcessed, type Db } from '@tandem/db';
import { outboxEvent, toJsonInput, type Log } from '@tandem/service-kit';
import {
  checkModelPlan,
  initialMessages,
  planQualityScore,
  planningTools,
  type ChatMessage,
  type ModelToolCall,
} from '../domain/planning.js';
import { fetchPatterns, type Requester } from '../patterns.js';

type TaskAcceptedData = EventData<typeof TaskAccepted>;

/** What the planning model must offer: one chat completion with tools. */
export interface PlanningModel {
  complete(request: {
    taskId: string;
    messages: ChatMessage[];
    tools: ReturnType<typeof planningTools>;
    idempotencyKey: string;
  }): Promise<{ content: string | null; toolCalls: ModelToolCall[]; model: string }>;
}

/** Dependencies of the planning handler. */
export interface PlanningDeps {
  db: Db;
  log: Log;
  prefix: string;
  model: PlanningModel;
  registry: ReadonlyMap<string, ToolDefinition>;
  request: Requester;
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
  const task = await db.prisma.task.findUnique({ where: { id: data.taskId }, select: { status: true } });
  if (!task)
    throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${data.taskId} does not exist`, {
      retryable: true,
    });
  if (task.status === 'planned' || task.status === 'failed') {
    await db.prisma.$transaction(async (tx) => {
      await markProcessed(tx, CONSUMER, context.messageId);
    });
    return;
  }
  await db.prisma.task.updateMany({
    where: { id: data.taskId, status: 'accepted' },
    data: { status: 'planning' },
  });

  const started = Date.now();
  const { patterns } = await fetchPatterns(
    {
      request: deps.request,
      prefix: deps.prefix,
      timeoutMs: deps.limits.learningTimeoutMs,
      log: context.log,
    },
    { kind: data.kind, agentId: data.agentId, limit: 5 },
  );
  const messages = initialMessages({ goal: data.goal, input: data.input, kind: data.kind, patterns });
  const tools = planningTools(deps.registry);
  let lastError: ErrorShape & { stepId?: string } = {
    code: ErrorCodes.PLAN_REJECTED,
    message: 'no plan',
    retryable: false,
  };
  let invalidCalls = 0;
  let models: string[] = [];

  for (let attempt = 0; attempt <= deps.limits.maxRepairs; attempt += 1) {
    let answer: Awaited<ReturnType<PlanningModel['complete']>>;
    try {
      answer = await deps.model.complete({
        taskId: data.taskId,
        messages,
        tools,
        idempotencyKey: `plan:${data.taskId}:v1:${attempt}`,
      });
    } catch (error) {
      const shape = toErrorShape(error);
      // A retryable model failure is tried again later through redelivery, until the last delivery.
      if (shape.retryable && context.deliveryCount < deps.limits.maxDeliver) {
        throw new TandemError(shape.code, shape.message, { retryable: true, cause: error });
      }
      lastError = shape;
      break;
    }
    models = [...new Set([...models, answer.model])];
    const check = checkModelPlan(deps.registry, answer.toolCalls, answer.content, {
      maxSteps: deps.limits.maxSteps,
      maxArgumentBytes: deps.limits.maxArgumentBytes,
      maxDepth: deps.limits.maxDepth,
    });
    if (check.ok) {
      const planId = randomUUID();
      const planningMs = Date.now() - started;
      const quality = planQualityScore({
        repairAttempts: attempt,
        invalidCalls,
        stepCount: check.steps.length,
        maxSteps: deps.limits.maxSteps,
      });
      const steps = check.steps.map((step, index) => ({
        stepId: randomUUID(),
        key: step.key,
        index,
        tool: step.tool.name,
        arguments: step.arguments,
        riskClass: step.tool.risk,
        sideEffects: step.tool.sideEffects,
        dependsOn: step.dependsOn,
        rationale: null,
      }));
      const { message } = outboxEvent(
        { prefix: deps.prefix, publisher: 'planner' },
        PlanProposed,
        {
          taskId: data.taskId,
          planId,
          version: 1,
          request: data.request,
          kind: data.kind,
          agentId: data.agentId,
          steps,
        },
        { correlationId: data.taskId, causationId: envelope.id },
      );
      await db.prisma.$transaction(async (tx) => {
        if (!(await markProcessed(tx, CONSUMER, context.messageId))) return;
        const updated = await tx.task.updateMany({
          where: { id: data.taskId, status: { in: ['accepted', 'planning'] } },
          data: { status: 'planned' },
        });
        if (updated.count === 0) return;
        await tx.plan.create({
          data: {
            id: planId,
            taskId: data.taskId,
            version: 1,
            modelsUsed: models,
            qualityScore: quality,
            attempts: attempt + 1,
            strategy: patterns.length > 0 ? 'with-patterns' : 'plain',
          },
        });
        await tx.planStep.createMany({
          data: steps.map((step) => ({
            id: step.stepId,
            planId,
            stepKey: step.key,
            index: step.index,
            dependsOn: step.dependsOn,
            tool: step.tool,
            arguments: step.arguments,
            riskClass: step.riskClass,
            idempotencyKey: `${data.taskId}:1:${step.key}`,
          })),
        });
        await tx.planMetrics.create({
          data: {
            planId,
            taskId: data.taskId,
            stepCount: steps.length,
            validationErrors: invalidCalls,
            repairAttempts: attempt,
            qualityScore: quality,
            planningMs,
          },
        });
        await enqueueOutbox(tx, message);
      });
      deps.kick();
      deps.onPlanned?.('proposed', { repairs: attempt, ms: planningMs, quality });
      context.log.info(
        { taskId: data.taskId, planId, steps: steps.length, repairs: attempt },
        'plan proposed',
      );
      return;
    }
    lastError = check.error;
    invalidCalls += check.invalidCalls;
    messages.push(...check.feedback);
    context.log.info(
      { taskId: data.taskId, attempt, code: check.error.code },
      'plan rejected; asking the model again',
    );
  }

  const error: ErrorShape = { ...lastError, retryable: false };
  const { message } = outboxEvent(
    { prefix: deps.prefix, publisher: 'planner' },
    PlanFailed,
    { taskId: data.taskId, request: data.request, kind: data.kind, agentId: data.agentId, error },
    { correlationId: data.taskId, causationId: envelope.id },
  );
  await db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, CONSUMER, context.messageId))) return;
    const updated = await tx.task.updateMany({
      where: { id: data.taskId, status: { in: ['accepted', 'planning'] } },
      data: { status: 'failed', error: toJsonInput(error) },
    });
    if (updated.count === 0) return;
    await enqueueOutbox(tx, message);
  });
  deps.kick();
  deps.onPlanned?.('failed', { repairs: deps.limits.maxRepairs, ms: Date.now() - started, quality: null });
  context.log.warn({ taskId: data.taskId, code: error.code }, 'planning failed');
}
