import {
  ErrorCodes,
  modelPreferenceFor,
  type ErrorShape,
  type TaskBudget,
  type TaskModelPreference,
  type ToolCheckContext,
  type ToolDefinition,
} from '@tandem/contracts';
import { modelUseOfTask, taskStatus, type Db, type TaskModelUse } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import {
  afterModelFailure,
  cancelledMeanwhile,
  deadlinePassed,
  remainingBudgetUsd,
  type PlanningResult,
} from './domain/planning-decisions.js';
import {
  checkModelPlan,
  planningTools,
  type ChatMessage,
  type ModelToolCall,
  type ValidatedStep,
} from './domain/planning.js';

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

/**
 * The model of a delivery that reports the delivery `working()` before and after each call: a planning
 * round keeps its message held for as long as the model answers, past the framework's own heartbeat cap.
 */
export function heartbeating(model: PlanningModel, context: { working: () => void }): PlanningModel {
  return {
    complete: async (request) => {
      context.working();
      const answer = await model.complete(request);
      context.working();
      return answer;
    },
  };
}

/** Limits of one planning round. */
export interface PlanningLimits {
  maxRepairs: number;
  maxSteps: number;
  maxArgumentBytes: number;
  maxDepth: number;
}

export type { PlanningResult } from './domain/planning-decisions.js';

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
    if (attempt > 0 && cancelledMeanwhile(await taskStatus(deps.db, input.taskId)))
      return { kind: 'cancelled' };
    const late = deadlinePassed(input.deadline, Date.now());
    if (late !== null) return { kind: 'failed', error: late, attempts, models };
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
      const failure = afterModelFailure(error, input.mayRetry);
      if (failure.kind === 'retry') return failure;
      return { kind: 'failed', error: failure.error, attempts, models };
    }
    spent.calls += 1;
    spent.tokens += answer.usage.totalTokens;
    spent.costUsd += answer.costUsd;
    models = [...new Set([...models, answer.model])];
    const maxCostUsd = remainingBudgetUsd(input.budget, spent.costUsd);
    const check = checkModelPlan(
      deps.registry,
      answer.toolCalls,
      answer.content,
      {
        maxSteps: deps.limits.maxSteps,
        maxArgumentBytes: deps.limits.maxArgumentBytes,
        maxDepth: deps.limits.maxDepth,
        ...(maxCostUsd === undefined || deps.estimateStepCostUsd === undefined
          ? {}
          : { maxCostUsd, estimateStepCostUsd: deps.estimateStepCostUsd }),
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
