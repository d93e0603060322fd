import {
  DEFAULT_TOOL_CHECK_CONTEXT,
  ErrorCodes,
  STEP_KEY,
  checkPlanSize,
  toModelTools,
  validatePlan,
  validateToolArguments,
  validateToolCall,
  type ErrorShape,
  type JsonValue,
  type LearningPatternsReply,
  type ModelToolSchema,
  type ToolCallLimits,
  type ToolCheckContext,
  type ToolDefinition,
  type ValidToolCall,
  type EventData,
  type TaskReplanRequested,
} from '@tandem/contracts';
import { z } from 'zod';

/** A validated step: its tool, arguments, dependencies and the model's rationale. */
export interface ValidatedStep {
  key: string;
  tool: ToolDefinition;
  arguments: Record<string, JsonValue>;
  dependsOn: string[];
  rationale: string | null;
}

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
    '- Never invent results: use references to earlier steps (any string argument may contain them).',
    '- Give every call `dependsOn` (the ids of the steps whose results it needs) and a one-sentence `rationale`.',
    "- Files live in the task's workspace: read_file, write_file, delete_file and list_files take relative paths like `reports/q1.csv`; run_code programs see the same files.",
    '- http_request only reaches allow-listed hosts over https; put credentials in headers as `secret` names, never as values.',
    "- Use ask_human only when the task cannot go on without a person's answer.",
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

const MAX_CONTEXT_CHARS = 4000;

/** The message that tells the planning model what went wrong with the previous plan. */
export function replanMessage(data: EventData<typeof TaskReplanRequested>): ChatMessage {
  const completed = JSON.stringify(data.completedSteps);
  return {
    role: 'user',
    content: [
      `Plan version ${data.version} failed at step ${data.failedStep.key} (${data.failedStep.tool}): ${data.failedStep.error.code}: ${data.failedStep.error.message.slice(0, 1500)}`,
      `Steps that completed before it, with their values: ${completed.length > MAX_CONTEXT_CHARS ? `${completed.slice(0, MAX_CONTEXT_CHARS)}...` : completed}`,
      'Make a new, complete plan that reaches the goal without repeating the failure. Steps are numbered s1, s2, ... again.',
    ].join('\n'),
  };
}

/** Fields every planning call carries beside the tool's own arguments. */
const PLANNING_ENVELOPE = {
  dependsOn: z
    .array(z.string().regex(STEP_KEY))
    .max(100)
    .optional()
    .describe(
      'Ids of the steps (s1, s2, ...) whose results this step needs; references in arguments count too.',
    ),
  rationale: z.string().max(500).optional().describe('One short sentence: why this step is needed.'),
};

const planningRegistries = new WeakMap<
  ReadonlyMap<string, ToolDefinition>,
  ReadonlyMap<string, ToolDefinition>
>();

/**
 * The registry the planning model calls: each tool's input extended with `dependsOn` and `rationale`,
 * validated by the same pipeline (strict, no coercion) and split off before the step is stored.
 */
export function planningRegistry(
  registry: ReadonlyMap<string, ToolDefinition>,
): ReadonlyMap<string, ToolDefinition> {
  const cached = planningRegistries.get(registry);
  if (cached) return cached;
  const extended = new Map<string, ToolDefinition>();
  for (const [name, tool] of registry) {
    if (!(tool.input instanceof z.ZodObject)) throw new Error(`tool ${name} must take an object`);
    extended.set(name, { ...tool, input: tool.input.extend(PLANNING_ENVELOPE) });
  }
  planningRegistries.set(registry, extended);
  return extended;
}

const planningToolSchemas = new WeakMap<ReadonlyMap<string, ToolDefinition>, ModelToolSchema[]>();

/** The tools as sent to the planning model (with the planning envelope); computed once per registry. */
export function planningTools(registry: ReadonlyMap<string, ToolDefinition>): ModelToolSchema[] {
  let tools = planningToolSchemas.get(registry);
  if (tools === undefined) {
    tools = toModelTools(planningRegistry(registry).values());
    planningToolSchemas.set(registry, tools);
  }
  return tools;
}

/** Limits of one plan check. */
export interface PlanCheckLimits extends ToolCallLimits {
  maxSteps: number;
  /** The task's cost budget; a plan estimated above it is rejected with PLAN.OVER_BUDGET. */
  maxCostUsd?: number | undefined;
  estimateStepCostUsd?: (step: ValidatedStep) => number;
}

/** The outcome of checking one model answer. */
export type PlanCheck =
  | { ok: true; steps: ValidatedStep[] }
  | { ok: false; error: ErrorShape & { stepId?: string }; feedback: ChatMessage[]; invalidCalls: number };

/** Whole-plan checks shared by model plans and edited plans; returns the steps in execution order. */
function checkWholePlan(
  steps: ValidatedStep[],
  limits: PlanCheckLimits,
): { ok: true; steps: ValidatedStep[] } | { ok: false; error: ErrorShape & { stepId?: string } } {
  const estimate = limits.estimateStepCostUsd;
  const result = validatePlan(steps, {
    maxSteps: limits.maxSteps,
    ...(limits.maxCostUsd === undefined || estimate === undefined
      ? {}
      : {
          maxCostUsd: limits.maxCostUsd,
          estimateCostUsd: (all: readonly ValidatedStep[]) =>
            all.reduce((sum, step) => sum + estimate(step), 0),
        }),
  });
  if (!result.ok) return result;
  const byKey = new Map(steps.map((step) => [step.key, step]));
  const ordered: ValidatedStep[] = [];
  for (const key of result.order) {
    const step = byKey.get(key);
    if (step) ordered.push({ ...step, dependsOn: [...(result.dependencies.get(key) ?? step.dependsOn)] });
  }
  return { ok: true, steps: ordered };
}

/** Splits the planning envelope off a validated planning call. */
function splitEnvelope(
  registry: ReadonlyMap<string, ToolDefinition>,
  call: ValidToolCall,
): {
  tool: ToolDefinition;
  arguments: Record<string, JsonValue>;
  dependsOn: string[];
  rationale: string | null;
} {
  const { dependsOn, rationale, ...rest } = call.arguments;
  const tool = registry.get(call.tool.name) ?? call.tool;
  return {
    tool,
    arguments: rest,
    dependsOn: Array.isArray(dependsOn) ? dependsOn.filter((key) => typeof key === 'string') : [],
    rationale: typeof rationale === 'string' ? rationale : null,
  };
}

/**
 * Validates every call of a model answer and then the whole plan. On failure returns the messages that
 * tell the model what was wrong (one tool message per call, as the API requires), so it can try again.
 */
export function checkModelPlan(
  registry: ReadonlyMap<string, ToolDefinition>,
  calls: ModelToolCall[],
  content: string | null,
  limits: PlanCheckLimits,
  context: ToolCheckContext = DEFAULT_TOOL_CHECK_CONTEXT,
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
  const steps: ValidatedStep[] = [];
  const results: Array<{ call: ModelToolCall; error: ErrorShape | null }> = [];
  // A plan over the step cap is rejected before any call is looked at.
  let firstError: (ErrorShape & { stepId?: string }) | null = checkPlanSize(calls.length, limits);
  if (firstError === null) {
    const planning = planningRegistry(registry);
    calls.forEach((call, index) => {
      const key = `s${index + 1}`;
      const validation = validateToolCall(
        planning,
        { name: call.name, arguments: call.arguments },
        limits,
        context,
      );
      if (validation.ok) {
        steps.push({ key, ...splitEnvelope(registry, validation.call) });
        results.push({ call, error: null });
      } else {
        firstError ??= { ...validation.error, stepId: key };
        results.push({ call, error: validation.error });
      }
    });
  } else {
    for (const call of calls) results.push({ call, error: null });
  }
  if (!firstError) {
    const planCheck = checkWholePlan(steps, limits);
    if (planCheck.ok) return { ok: true, steps: planCheck.steps };
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
 * Validates a plan written by a human or another system (`PUT /v1/tasks/:id/plan`) exactly like a
 * model's: every step through the tool-call pipeline, then the whole-plan checks. Errors name the step.
 */
export function checkEditedPlan(
  registry: ReadonlyMap<string, ToolDefinition>,
  steps: ReadonlyArray<{
    id: string;
    tool: string;
    arguments: unknown;
    dependsOn?: readonly string[] | undefined;
  }>,
  limits: PlanCheckLimits & { context: ToolCheckContext },
): { ok: true; steps: ValidatedStep[] } | { ok: false; error: ErrorShape & { stepId?: string } } {
  const sizeError = checkPlanSize(steps.length, limits);
  if (sizeError) return { ok: false, error: sizeError };
  const validated: ValidatedStep[] = [];
  for (const step of steps) {
    const validation = validateToolArguments(registry, step.tool, step.arguments, limits, limits.context);
    if (!validation.ok) return { ok: false, error: { ...validation.error, stepId: step.id } };
    validated.push({
      key: step.id,
      tool: validation.call.tool,
      arguments: validation.call.arguments,
      dependsOn: [...(step.dependsOn ?? [])],
      rationale: null,
    });
  }
  return checkWholePlan(validated, limits);
}
