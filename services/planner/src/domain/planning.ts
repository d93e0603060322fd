import {
  ErrorCodes,
  referencedStepKeys,
  toModelTools,
  validatePlan,
  validateToolCall,
  type ErrorShape,
  type JsonValue,
  type LearningPatternsReply,
  type ModelToolSchema,
  type PlanStepDraft,
  type ToolCallLimits,
  type ToolDefinition,
} from '@tandem/contracts';

/** What the planner knows about a task when it asks the model. */
export interface PlanningRequest {
  goal: string;
  input: JsonValue | undefined;
  kind: string;
  patterns: LearningPatternsReply['patterns'];
}

/** A chat message in the OpenAI shape (the subset the planner writes). */
export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | {
      role: 'assistant';
      content: string | null;
      tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
    }
  | { role: 'tool'; tool_call_id: string; content: string };

/** A tool call as the model returned it. */
export interface ModelToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** The system prompt of the planning model. */
export function planningSystemPrompt(patterns: PlanningRequest['patterns']): string {
  const lines = [
    'You are the planning model of Tandem. Plan the task as an ordered list of function calls and make all of them in one answer.',
    'Rules:',
    '- Call the tools in the order they must run. Steps are numbered s1, s2, ... in the order of your calls.',
    '- Use run_code for any computation. Prefer `spec` (a precise description the code model will implement); give `code` only for a short, obviously correct program.',
    '- Finish with exactly one respond call. Put results of earlier steps into the answer with {{steps.s1.value}} (the value the program set as `result`) or {{steps.s1.stdout}}.',
    '- Never invent results: use references to earlier steps.',
  ];
  if (patterns.length > 0) {
    lines.push('', 'What Tandem learned from earlier tasks of this kind (most reliable first):');
    for (const pattern of patterns) {
      lines.push(
        `- [${pattern.type}, confidence ${pattern.confidence.toFixed(2)}, ${pattern.successCount} ok / ${pattern.failureCount} failed] ${pattern.content}`,
      );
    }
  }
  return lines.join('\n');
}

/** The first messages of a planning conversation. */
export function initialMessages(request: PlanningRequest): ChatMessage[] {
  const task: Record<string, JsonValue> = { goal: request.goal, kind: request.kind };
  if (request.input !== undefined) task['input'] = request.input;
  return [
    { role: 'system', content: planningSystemPrompt(request.patterns) },
    { role: 'user', content: `Plan this task:\n${JSON.stringify(task, null, 2)}` },
  ];
}

/** The tools as sent to the planning model. */
export function planningTools(registry: ReadonlyMap<string, ToolDefinition>): ModelToolSchema[] {
  return toModelTools(registry.values());
}

/** The outcome of checking one model answer. */
export type PlanCheck =
  | { ok: true; steps: PlanStepDraft[] }
  | { ok: false; error: ErrorShape & { stepId?: string }; feedback: ChatMessage[]; invalidCalls: number };

/**
 * Validates every call of a model answer and then the whole plan. On failure returns the messages that
 * tell the model what was wrong (one tool message per call, as the API requires), so it can try again.
 */
export function checkModelPlan(
  registry: ReadonlyMap<string, ToolDefinition>,
  calls: ModelToolCall[],
  content: string | null,
  limits: ToolCallLimits & { maxSteps: number },
): PlanCheck {
  if (calls.length === 0) {
    const error = {
      code: ErrorCodes.PLAN_NO_TOOL_CALLS,
      message: 'the answer contained no function calls; plan with function calls',
      retryable: false,
    };
    return {
      ok: false,
      error,
      invalidCalls: 0,
      feedback: [
        { role: 'assistant', content },
        { role: 'user', content: `Rejected: ${error.message}.` },
      ],
    };
  }
  const assistant: ChatMessage = {
    role: 'assistant',
    content,
    tool_calls: calls.map((call) => ({
      id: call.id,
      type: 'function',
      function: { name: call.name, arguments: call.arguments },
    })),
  };
  const steps: PlanStepDraft[] = [];
  const results: Array<{ call: ModelToolCall; error: ErrorShape | null }> = [];
  let firstError: (ErrorShape & { stepId?: string }) | null = null;
  calls.forEach((call, index) => {
    const key = `s${index + 1}`;
    const validation = validateToolCall(registry, { name: call.name, arguments: call.arguments }, limits);
    if (validation.ok) {
      const references = Object.values(validation.call.arguments).flatMap((value) =>
        typeof value === 'string' ? referencedStepKeys(value) : [],
      );
      steps.push({
        key,
        tool: validation.call.tool,
        arguments: validation.call.arguments,
        dependsOn: [...new Set(references)],
      });
      results.push({ call, error: null });
    } else {
      firstError ??= { ...validation.error, stepId: key };
      results.push({ call, error: validation.error });
    }
  });
  if (!firstError) {
    const planCheck = validatePlan(steps, { maxSteps: limits.maxSteps });
    if (planCheck.ok) return { ok: true, steps };
    firstError = planCheck.error;
  }
  const error: ErrorShape & { stepId?: string } = firstError;
  const invalidCalls = results.filter((result) => result.error !== null).length;
  const feedback: ChatMessage[] = [
    assistant,
    ...results.map((result, index): ChatMessage => ({
      role: 'tool',
      tool_call_id: result.call.id,
      content: result.error
        ? `Rejected step s${index + 1}: ${result.error.code}: ${result.error.message}`
        : `Step s${index + 1} is valid, but the plan as a whole was rejected.`,
    })),
    {
      role: 'user',
      content: `The plan was rejected (${error.code}: ${error.message}). Send the whole corrected plan again as function calls.`,
    },
  ];
  return { ok: false, error, feedback, invalidCalls };
}

/**
 * A first quality figure for a plan (0..1): fewer repairs and fewer invalid calls score higher.
 * Learning refines plan quality later from outcomes.
 */
export function planQualityScore(input: {
  repairAttempts: number;
  invalidCalls: number;
  stepCount: number;
  maxSteps: number;
}): number {
  const repairPenalty = 0.25 * input.repairAttempts;
  const invalidPenalty = 0.05 * input.invalidCalls;
  const sizePenalty = input.stepCount > input.maxSteps / 2 ? 0.1 : 0;
  return Math.max(0, Math.min(1, 1 - repairPenalty - invalidPenalty - sizePenalty));
}
