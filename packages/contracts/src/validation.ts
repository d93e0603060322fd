import { ErrorCodes, type ErrorShape } from './errors.js';
import { jsonDepth, type JsonValue } from './json.js';
import type { ToolDefinition } from './tools.js';

/** Limits applied to a tool call before and while it is parsed. */
export interface ToolCallLimits {
  maxArgumentBytes: number;
  maxDepth: number;
}

/** Default limits for tool-call arguments. */
export const DEFAULT_TOOL_CALL_LIMITS: ToolCallLimits = { maxArgumentBytes: 256 * 1024, maxDepth: 16 };

/** A function call as the model returned it: a name and the raw JSON text of its arguments. */
export interface RawToolCall {
  name: string;
  arguments: string;
}

/** A call that passed every check. */
export interface ValidToolCall {
  tool: ToolDefinition;
  arguments: Record<string, JsonValue>;
}

/** The outcome of validating one call: the call, or a stable error code with a message for the model. */
export type ToolCallValidation = { ok: true; call: ValidToolCall } | { ok: false; error: ErrorShape };

function fail(code: string, message: string, details?: unknown): ToolCallValidation {
  return {
    ok: false,
    error:
      details === undefined
        ? { code, message, retryable: false }
        : { code, message, retryable: false, details },
  };
}

/**
 * OpenAI strict mode sends every optional property as `null`; treat those as absent.
 * Only object properties are dropped — nulls inside arrays are data.
 */
export function dropNullProperties(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNullProperties);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      if (child === null) continue;
      out[key] = dropNullProperties(child);
    }
    return out;
  }
  return value;
}

function isJsonObject(value: unknown): value is Record<string, JsonValue> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Validates one model tool call, in order: size cap, JSON parse (never repaired), exact function name,
 * nesting depth, schema (no coercion, unknown properties rejected), then the tool's semantic checks.
 */
export function validateToolCall(
  registry: ReadonlyMap<string, ToolDefinition>,
  call: RawToolCall,
  limits: ToolCallLimits = DEFAULT_TOOL_CALL_LIMITS,
): ToolCallValidation {
  const bytes = Buffer.byteLength(call.arguments, 'utf8');
  if (bytes > limits.maxArgumentBytes) {
    return fail(
      ErrorCodes.TOOL_ARGUMENTS_TOO_LARGE,
      `arguments are ${bytes} bytes; the limit is ${limits.maxArgumentBytes}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(call.arguments);
  } catch (error) {
    return fail(
      ErrorCodes.TOOL_INVALID_JSON,
      `arguments are not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const tool = registry.get(call.name);
  if (!tool) {
    return fail(
      ErrorCodes.TOOL_UNKNOWN_FUNCTION,
      `unknown function "${call.name}"; available: ${[...registry.keys()].join(', ')}`,
    );
  }
  const depth = jsonDepth(parsed);
  if (depth > limits.maxDepth) {
    return fail(
      ErrorCodes.TOOL_ARGUMENTS_TOO_DEEP,
      `arguments nest ${depth} levels deep; the limit is ${limits.maxDepth}`,
    );
  }
  const withoutNulls = dropNullProperties(parsed);
  const result = tool.input.safeParse(withoutNulls);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => ({
      path: issue.path.map(String),
      message: issue.message,
    }));
    const summary = issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    return fail(ErrorCodes.TOOL_INVALID_ARGUMENTS, `invalid arguments for ${tool.name}: ${summary}`, {
      issues,
    });
  }
  const semantic = tool.check ? tool.check(result.data) : [];
  if (semantic.length > 0) {
    const summary = semantic
      .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
      .join('; ');
    return fail(ErrorCodes.TOOL_SEMANTIC, `${tool.name}: ${summary}`, { issues: semantic });
  }
  if (!isJsonObject(withoutNulls))
    return fail(ErrorCodes.TOOL_INVALID_ARGUMENTS, 'arguments must be a JSON object');
  return { ok: true, call: { tool, arguments: withoutNulls } };
}

/** A step of a plan after each call was validated. */
export interface PlanStepDraft {
  key: string;
  tool: ToolDefinition;
  arguments: Record<string, JsonValue>;
  dependsOn: string[];
}

/** Whole-plan limits. */
export interface PlanLimits {
  maxSteps: number;
}

const REFERENCE = /\{\{\s*steps\.([A-Za-z0-9_-]+)\.(value|stdout)((?:\.[A-Za-z0-9_]+)*)\s*\}\}/g;

/** The step keys referenced as {{steps.<key>.value|stdout}} in a text. */
export function referencedStepKeys(text: string): string[] {
  return [...text.matchAll(REFERENCE)].map((match) => match[1] ?? '');
}

/** Replaces {{steps.<key>.value[.path]}} and {{steps.<key>.stdout}} with earlier results (JSON for non-strings). */
export function resolveStepReferences(
  text: string,
  results: ReadonlyMap<string, { value: unknown; stdout: string }>,
): string {
  return text.replace(REFERENCE, (whole, key: string, field: string, path: string) => {
    const result = results.get(key);
    if (!result) return whole;
    let raw: unknown = field === 'stdout' ? result.stdout.trimEnd() : result.value;
    for (const segment of path.split('.').filter((part) => part.length > 0)) {
      if (raw === null || typeof raw !== 'object') return whole;
      raw = Array.isArray(raw) ? raw[Number(segment)] : (raw as Record<string, unknown>)[segment];
    }
    return typeof raw === 'string' ? raw : JSON.stringify(raw ?? null);
  });
}

/** Checks a whole plan: step count, exactly one `respond` and it comes last, references point backwards. */
export function validatePlan(
  steps: PlanStepDraft[],
  limits: PlanLimits,
): { ok: true } | { ok: false; error: ErrorShape & { stepId?: string } } {
  if (steps.length === 0)
    return {
      ok: false,
      error: { code: ErrorCodes.PLAN_EMPTY, message: 'the plan has no steps', retryable: false },
    };
  if (steps.length > limits.maxSteps) {
    return {
      ok: false,
      error: {
        code: ErrorCodes.PLAN_TOO_MANY_STEPS,
        message: `the plan has ${steps.length} steps; the limit is ${limits.maxSteps}`,
        retryable: false,
      },
    };
  }
  const responds = steps.filter((step) => step.tool.name === 'respond');
  const last = steps[steps.length - 1];
  if (responds.length !== 1 || last?.tool.name !== 'respond') {
    return {
      ok: false,
      error: {
        code: ErrorCodes.PLAN_MISSING_RESPOND,
        message: 'a plan must end with exactly one respond call',
        retryable: false,
      },
    };
  }
  const seen = new Set<string>();
  for (const step of steps) {
    for (const dependency of step.dependsOn) {
      if (!seen.has(dependency)) {
        return {
          ok: false,
          error: {
            code: ErrorCodes.PLAN_BAD_REFERENCE,
            message: `step ${step.key} depends on ${dependency}, which does not come before it`,
            retryable: false,
            stepId: step.key,
          },
        };
      }
    }
    for (const value of Object.values(step.arguments)) {
      if (typeof value !== 'string') continue;
      for (const key of referencedStepKeys(value)) {
        if (!seen.has(key)) {
          return {
            ok: false,
            error: {
              code: ErrorCodes.PLAN_BAD_REFERENCE,
              message: `step ${step.key} refers to steps.${key}, which does not come before it`,
              retryable: false,
              stepId: step.key,
            },
          };
        }
      }
    }
    seen.add(step.key);
  }
  return { ok: true };
}
