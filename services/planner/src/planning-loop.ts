import {
  ErrorCodes,
  modelPreferenceFor,
  toErrorShape,
  type ErrorShape,
  type TaskBudget,
  type TaskModelPreference,
  type ToolCheckContext,
  type ToolDefinition,
} from '@tandem/contracts';
import { modelUseOfTask, type Db, type TaskModelUse } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { checkModelPlan, planningTools, type ChatMessage, type ModelToolCall } from './domain/planning.js';
import type { ValidatedStep } from './plan-store.js';

/** What the planning model must offer: one chat completion with tools, within the task's budget. */
export interface PlanningModel {
  complete(request: {
    taskId: string;
    messages: ChatMessage[];
    tools: ReturnType<typeof planningTools>;
    idempotencyKey: string;
    preference: { tier?: string; model?: string } | undefined;
    budget: TaskBudget | undefined;
    spent: TaskModelUse;
  }): Promise<{
    content: string | null;
    toolCalls: ModelToolCall[];
    model: string;
    usage: { totalTokens: number };
    costUsd: number;
  }>;
}

/** Limits of one planning round. */
export interface PlanningLimits {
  maxRepairs: number;
  maxSteps: number;
  maxArgumentBytes: number;
  maxDepth: number;
}

/** The outcome of asking the model (with bounded repairs) for a valid plan. */
export type PlanningResult =
  | { kind: 'planned'; steps: ValidatedStep[]; attempts: number; invalidCalls: number; models: string[] }
  | { kind: 'failed'; error: ErrorShape & { stepId?: string }; attempts: number; models: string[] }
  /** A retryable model failure: the caller lets the message be redelivered. */
  | { kind: 'retry'; error: ErrorShape; cause: unknown }
  /** The task was cancelled meanwhile: nothing is stored. */
  | { kind: 'cancelled' };

const NOTHING: TaskModelUse = { tokens: 0, costUsd: 0, calls: 0 };

/**
 * Asks the planning model for a plan and validates every answer; a rejected answer goes back with its
 * errors, at most `maxRepairs` times. Stops early when the task is cancelled, its deadline passed or its
 * budget is spent. Model calls happen outside any transaction.
 */
export async function planWithModel(
  deps: {
    db: Db;
    model: PlanningModel;
    registry: ReadonlyMap<string, ToolDefinition>;
    checkContext: ToolCheckContext;
    limits: PlanningLimits;
    log: Log;
    /** Estimated model cost of running one step; with a cost budget, a plan over what is left is rejected. */
    estimateStepCostUsd?: (step: ValidatedStep) => number;
  },
  input: {
    taskId: string;
    messages: ChatMessage[];
    keyPrefix: string;
    budget: TaskBudget | undefined;
    preference: TaskModelPreference | undefined;
    deadline: Date | null;
    /** Whether a retryable model failure may still be retried through redelivery. */
    mayRetry: boolean;
    /** Model use so far, when the caller already read it (otherwise read here). */
    spent?: TaskModelUse;
  },
): Promise<PlanningResult> {
  const { messages } = input;
  const tools = planningTools(deps.registry);
  // Model use so far only matters against a budget; without one, nothing is read.
  const spent = {
    ...(input.spent ?? (input.budget === undefined ? NOTHING : await modelUseOfTask(deps.db, input.taskId))),
  };
  let lastError: ErrorShape & { stepId?: string } = {
    code: ErrorCodes.PLAN_REJECTED,
    message: 'no plan',
    retryable: false,
  };
  let invalidCalls = 0;
  let models: string[] = [];
  let attempts = 0;
  for (let attempt = 0; attempt <= deps.limits.maxRepairs; attempt += 1) {
    // The caller read the task just before the first round; later rounds look again for a cancellation.
    if (attempt > 0) {
      const task = await deps.db.prisma.task.findUnique({
        where: { id: input.taskId },
        select: { status: true },
      });
      if (!task || task.status === 'cancelled') return { kind: 'cancelled' };
    }
    if (input.deadline !== null && Date.now() >= input.deadline.getTime()) {
      return {
        kind: 'failed',
        error: {
          code: ErrorCodes.TASK_DEADLINE_EXCEEDED,
          message: `the task's deadline ${input.deadline.toISOString()} passed while it was being planned`,
          retryable: false,
        },
        attempts,
        models,
      };
    }
    attempts = attempt + 1;
    let answer: Awaited<ReturnType<PlanningModel['complete']>>;
    try {
      answer = await deps.model.complete({
        taskId: input.taskId,
        messages,
        tools,
        idempotencyKey: `${input.keyPrefix}:${attempt}`,
        preference: modelPreferenceFor(input.preference, 'planning'),
        budget: input.budget,
        spent,
      });
    } catch (error) {
      const shape = toErrorShape(error);
      if (shape.retryable && input.mayRetry) return { kind: 'retry', error: shape, cause: error };
      return { kind: 'failed', error: { ...shape, retryable: false }, attempts, models };
    }
    spent.calls += 1;
    spent.tokens += answer.usage.totalTokens;
    spent.costUsd += answer.costUsd;
    models = [...new Set([...models, answer.model])];
    const check = checkModelPlan(
      deps.registry,
      answer.toolCalls,
      answer.content,
      {
        maxSteps: deps.limits.maxSteps,
        maxArgumentBytes: deps.limits.maxArgumentBytes,
        maxDepth: deps.limits.maxDepth,
        ...(input.budget?.maxCostUsd === undefined || deps.estimateStepCostUsd === undefined
          ? {}
          : {
              maxCostUsd: Math.max(0, input.budget.maxCostUsd - spent.costUsd),
              estimateStepCostUsd: deps.estimateStepCostUsd,
            }),
      },
      deps.checkContext,
    );
    if (check.ok) return { kind: 'planned', steps: check.steps, attempts, invalidCalls, models };
    lastError = check.error;
    invalidCalls += check.invalidCalls;
    messages.push(...check.feedback);
    deps.log.info(
      { taskId: input.taskId, attempt, code: check.error.code },
      'plan rejected; asking the model again',
    );
  }
  return { kind: 'failed', error: { ...lastError, retryable: false }, attempts, models };
}
