import { ErrorCodes, type ErrorCode, type ErrorShape } from './errors.js';
import { jsonDepth, rawJsonDepth, utf8ByteLength, type JsonValue } from './json.js';
import { DEFAULT_TOOL_CHECK_CONTEXT, type ToolCheckContext, type ToolDefinition } from './tools.js';

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

function fail(code: ErrorCode, message: string, details?: unknown): { ok: false; error: ErrorShape } {
  return {
    ok: false,
    error:
      details === undefined
        ? { code, message, retryable: false }
        : { code, message, retryable: false, details },
  };
}

/** Sets an own data property, so a key such as `__proto__` stays a key instead of replacing the prototype. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * OpenAI strict mode sends every optional property as `null`; treat those as absent.
 * Only object properties are dropped — nulls inside arrays are data. Keys are copied as own properties
 * (a `__proto__` key stays a key). Recursive: call it on values whose depth was already capped.
 */
export function dropNullProperties(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNullProperties);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      if (child === null) continue;
      setOwn(out, key, dropNullProperties(child));
    }
    return out;
  }
  return value;
}

function isJsonObject(value: unknown): value is Record<string, JsonValue> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Keys refused anywhere in tool arguments: they reach object prototypes in careless consumers. */
export const FORBIDDEN_ARGUMENT_KEYS: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'prototype',
]);

/** The first forbidden key in a JSON value and where it is, or null. Iterative. */
export function findForbiddenKey(value: unknown): { key: string; path: string[] } | null {
  const stack: Array<{ value: unknown; path: string[] }> = [{ value, path: [] }];
  while (stack.length > 0) {
    const current = stack.pop();
    if (!current || current.value === null || typeof current.value !== 'object') continue;
    if (Array.isArray(current.value)) {
      current.value.forEach((child, index) =>
        stack.push({ value: child, path: [...current.path, String(index)] }),
      );
      continue;
    }
    for (const key of Object.keys(current.value)) {
      if (FORBIDDEN_ARGUMENT_KEYS.has(key)) return { key, path: [...current.path, key] };
      stack.push({ value: (current.value as Record<string, unknown>)[key], path: [...current.path, key] });
    }
  }
  return null;
}

/** Letters from other scripts that look like Latin ones, for suggesting the name a look-alike imitates. */
// prettier-ignore
const CONFUSABLES: Readonly<Record<string, string>> = {
  а: 'a', в: 'b', е: 'e', ё: 'e', к: 'k', м: 'm', н: 'h', о: 'o', р: 'p', с: 'c', т: 't', у: 'y', х: 'x',
  і: 'i', ї: 'i', ј: 'j', ѕ: 's', ԁ: 'd', ԛ: 'q', ԝ: 'w', һ: 'h', ӏ: 'l', ԍ: 'g', ɡ: 'g', ɑ: 'a', ı: 'i',
  α: 'a', β: 'b', ε: 'e', η: 'n', ι: 'i', κ: 'k', ν: 'v', ο: 'o', ρ: 'p', τ: 't', υ: 'u', χ: 'x', ϲ: 'c',
};

/** A loose form of a name: compatibility-normalised, camelCase split, look-alikes mapped, separators `_`. */
function nameSkeleton(name: string): string {
  const split = name
    .normalize('NFKC')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();
  let mapped = '';
  for (const char of split) mapped += CONFUSABLES[char] ?? char;
  return mapped.replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 4;
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(
        Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost),
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * The registered name a wrong one most likely meant (`Run_Code`, `rеad_file` with a Cyrillic е,
 * `FS.READ`), or null. Only for the error message: a call with a wrong name is never accepted.
 */
export function suggestToolName(registry: ReadonlyMap<string, ToolDefinition>, name: string): string | null {
  if (name.length > 128) return null;
  const skeleton = nameSkeleton(name);
  if (skeleton === '') return null;
  const names = [...registry.keys()];
  const exact = names.find((candidate) => nameSkeleton(candidate) === skeleton);
  if (exact) return exact;
  const close = names.find((candidate) => editDistance(nameSkeleton(candidate), skeleton) <= 2);
  if (close) return close;
  const tokens = new Set(skeleton.split('_').filter((token) => token.length >= 3));
  let best: { name: string; shared: number } | null = null;
  for (const candidate of names) {
    const shared = candidate.split('_').filter((token) => tokens.has(token)).length;
    if (shared > 0 && (best === null || shared > best.shared)) best = { name: candidate, shared };
  }
  return best?.name ?? null;
}

function unknownFunction(
  registry: ReadonlyMap<string, ToolDefinition>,
  name: string,
): { ok: false; error: ErrorShape } {
  const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
  const foreign = [...name.slice(0, 64)].filter((char) => (char.codePointAt(0) ?? 0) > 0x7e);
  const parts = [`unknown function ${shown}; names must match exactly`];
  if (foreign.length > 0) {
    const codes = [...new Set(foreign)]
      .slice(0, 5)
      .map((char) => `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`);
    parts.push(`it contains non-ASCII characters (${codes.join(', ')})`);
  }
  const suggestion = suggestToolName(registry, name);
  if (suggestion !== null) parts.push(`did you mean "${suggestion}"?`);
  parts.push(`available: ${[...registry.keys()].join(', ')}`);
  return fail(
    ErrorCodes.TOOL_UNKNOWN_FUNCTION,
    parts.join('; '),
    suggestion === null ? undefined : { suggestion },
  );
}

function summarise(issues: Array<{ path: Array<string | number>; message: string }>): string {
  return issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}

/** Forbidden keys, schema (nulls dropped, no coercion, unknown keys rejected), then the tool's checks. */
function validateParsed(
  tool: ToolDefinition,
  parsed: unknown,
  context: ToolCheckContext,
): ToolCallValidation {
  const forbidden = findForbiddenKey(parsed);
  if (forbidden) {
    return fail(
      ErrorCodes.TOOL_FORBIDDEN_KEY,
      `invalid arguments for ${tool.name}: the key "${forbidden.key}" is not allowed (at ${forbidden.path.join('.')})`,
      { path: forbidden.path },
    );
  }
  if (!isJsonObject(parsed))
    return fail(ErrorCodes.TOOL_INVALID_ARGUMENTS, `arguments for ${tool.name} must be a JSON object`);
  const withoutNulls = dropNullProperties(parsed);
  const result = tool.input.safeParse(withoutNulls);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => ({
      path: issue.path.map(String),
      message: issue.message,
    }));
    return fail(
      ErrorCodes.TOOL_INVALID_ARGUMENTS,
      `invalid arguments for ${tool.name}: ${summarise(issues)}`,
      {
        issues,
      },
    );
  }
  const semantic = tool.check ? tool.check(result.data, context) : [];
  if (semantic.length > 0) {
    const code = semantic[0]?.code ?? ErrorCodes.TOOL_SEMANTIC;
    return fail(code, `${tool.name}: ${summarise(semantic)}`, {
      issues: semantic.map((issue) => ({
        path: issue.path.map(String),
        message: issue.message,
        code: issue.code ?? ErrorCodes.TOOL_SEMANTIC,
      })),
    });
  }
  if (!isJsonObject(withoutNulls))
    return fail(ErrorCodes.TOOL_INVALID_ARGUMENTS, 'arguments must be a JSON object');
  return { ok: true, call: { tool, arguments: withoutNulls } };
}

/**
 * Validates one model tool call, in order, each failure with its own code: size in bytes
 * (`TOOL.ARGUMENTS_TOO_LARGE`), nesting depth measured on the raw text before parsing
 * (`TOOL.ARGUMENTS_TOO_DEEP`), JSON parse, never repaired (`TOOL.INVALID_JSON`), exact function name
 * (`TOOL.UNKNOWN_FUNCTION`, with a suggestion for look-alikes), `__proto__`/`constructor`/`prototype`
 * keys (`TOOL.FORBIDDEN_KEY`), schema with nulls dropped, no coercion and unknown properties rejected
 * (`TOOL.INVALID_ARGUMENTS`), then the tool's semantic checks (`TOOL.PATH_REJECTED`,
 * `TOOL.URL_REJECTED`, `TOOL.HEADER_REJECTED`, `TOOL.LANGUAGE_UNSUPPORTED`, `TOOL.CODE_TOO_LARGE`,
 * otherwise `TOOL.SEMANTIC_CHECK_FAILED`).
 */
export function validateToolCall(
  registry: ReadonlyMap<string, ToolDefinition>,
  call: RawToolCall,
  limits: ToolCallLimits = DEFAULT_TOOL_CALL_LIMITS,
  context: ToolCheckContext = DEFAULT_TOOL_CHECK_CONTEXT,
): ToolCallValidation {
  const bytes = utf8ByteLength(call.arguments);
  if (bytes > limits.maxArgumentBytes) {
    return fail(
      ErrorCodes.TOOL_ARGUMENTS_TOO_LARGE,
      `arguments are ${bytes} bytes; the limit is ${limits.maxArgumentBytes}`,
    );
  }
  const depth = rawJsonDepth(call.arguments, limits.maxDepth);
  if (depth > limits.maxDepth) {
    return fail(
      ErrorCodes.TOOL_ARGUMENTS_TOO_DEEP,
      `arguments nest more than ${limits.maxDepth} levels deep`,
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
  if (!tool) return unknownFunction(registry, call.name);
  return validateParsed(tool, parsed, context);
}

/** Why a value is not plain JSON within the limits, walked iteratively; null when it is. */
function plainJsonProblem(value: unknown, limits: ToolCallLimits): 'deep' | 'not_json' | 'large' | null {
  let nodes = 0;
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const current = stack.pop();
    if (!current) break;
    nodes += 1;
    // Each node costs at least one byte of JSON, so more nodes than bytes means too large (or cyclic).
    if (nodes > limits.maxArgumentBytes) return 'large';
    const item = current.value;
    if (item === null || typeof item === 'string' || typeof item === 'boolean') {
      if (current.depth > limits.maxDepth) return 'deep';
      continue;
    }
    if (typeof item === 'number') {
      if (!Number.isFinite(item)) return 'not_json';
      if (current.depth > limits.maxDepth) return 'deep';
      continue;
    }
    if (typeof item !== 'object') return 'not_json';
    if (current.depth > limits.maxDepth) return 'deep';
    if (Array.isArray(item)) {
      for (const child of item) stack.push({ value: child, depth: current.depth + 1 });
      continue;
    }
    const prototype: unknown = Object.getPrototypeOf(item);
    if (prototype !== Object.prototype && prototype !== null) return 'not_json';
    for (const key of Object.keys(item))
      stack.push({ value: (item as Record<string, unknown>)[key], depth: current.depth + 1 });
  }
  return null;
}

/**
 * Validates arguments that arrive already parsed (a human-edited plan over HTTP): the same pipeline as
 * {@link validateToolCall} without the JSON parse. Depth is checked first (iteratively, with
 * {@link jsonDepth}'s measure) so that measuring the size with JSON.stringify can never recurse deeply;
 * values that are not plain JSON (functions, `undefined`, class instances, NaN, cycles) are
 * `TOOL.INVALID_ARGUMENTS`.
 */
export function validateToolArguments(
  registry: ReadonlyMap<string, ToolDefinition>,
  name: string,
  value: unknown,
  limits: ToolCallLimits = DEFAULT_TOOL_CALL_LIMITS,
  context: ToolCheckContext = DEFAULT_TOOL_CHECK_CONTEXT,
): ToolCallValidation {
  const problem = plainJsonProblem(value, limits);
  if (problem === 'deep' || (problem === null && jsonDepth(value, limits.maxDepth) > limits.maxDepth))
    return fail(
      ErrorCodes.TOOL_ARGUMENTS_TOO_DEEP,
      `arguments nest more than ${limits.maxDepth} levels deep`,
    );
  if (problem === 'large')
    return fail(
      ErrorCodes.TOOL_ARGUMENTS_TOO_LARGE,
      `arguments are larger than ${limits.maxArgumentBytes} bytes`,
    );
  if (problem === 'not_json')
    return fail(ErrorCodes.TOOL_INVALID_ARGUMENTS, 'arguments must be plain JSON data');
  const bytes = utf8ByteLength(JSON.stringify(value));
  if (bytes > limits.maxArgumentBytes) {
    return fail(
      ErrorCodes.TOOL_ARGUMENTS_TOO_LARGE,
      `arguments are ${bytes} bytes; the limit is ${limits.maxArgumentBytes}`,
    );
  }
  const tool = registry.get(name);
  if (!tool) return unknownFunction(registry, name);
  return validateParsed(tool, value, context);
}

/** A step key: what `{{steps.<key>...}}` and `dependsOn` name. */
export const STEP_KEY = /^[A-Za-z0-9_-]{1,64}$/;

const REFERENCE = /\{\{\s*steps\.([A-Za-z0-9_-]+)\.(value|stdout)((?:\.[A-Za-z0-9_]+)*)\s*\}\}/g;

/** The step keys referenced as {{steps.<key>.value|stdout}} in a text. */
export function referencedStepKeys(text: string): string[] {
  return [...text.matchAll(REFERENCE)].map((match) => match[1] ?? '');
}

/**
 * The step keys referenced in every string inside a JSON value (nested arrays and objects included),
 * each once, in order of first appearance. Iterative.
 */
export function referencedStepKeysDeep(value: JsonValue): string[] {
  const keys = new Set<string>();
  const stack: JsonValue[] = [value];
  while (stack.length > 0) {
    const current = stack.pop();
    if (typeof current === 'string') {
      for (const key of referencedStepKeys(current)) keys.add(key);
    } else if (Array.isArray(current)) {
      for (let index = current.length - 1; index >= 0; index -= 1) stack.push(current[index] ?? null);
    } else if (current !== null && typeof current === 'object') {
      const children = Object.values(current);
      for (let index = children.length - 1; index >= 0; index -= 1) stack.push(children[index] ?? null);
    }
  }
  return [...keys];
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
      // Own properties only: `.constructor` or `.__proto__` must not reach into prototypes.
      raw = Object.hasOwn(raw, segment) ? (raw as Record<string, unknown>)[segment] : undefined;
    }
    return typeof raw === 'string' ? raw : JSON.stringify(raw ?? null);
  });
}

/**
 * Resolves references inside every string of a JSON value (keys are left as they are). Recursive:
 * use it on validated arguments, whose depth is capped.
 */
export function resolveStepReferencesDeep(
  value: JsonValue,
  results: ReadonlyMap<string, { value: unknown; stdout: string }>,
): JsonValue {
  if (typeof value === 'string') return resolveStepReferences(value, results);
  if (Array.isArray(value)) return value.map((item) => resolveStepReferencesDeep(item, results));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const [key, child] of Object.entries(value))
      setOwn(out, key, resolveStepReferencesDeep(child, results));
    return out;
  }
  return value;
}

/** A step of a plan after each call was validated. */
export interface PlanStepDraft {
  key: string;
  tool: ToolDefinition;
  arguments: Record<string, JsonValue>;
  dependsOn: string[];
}

/** What {@link validatePlan} needs of a step: its key, its tool (or tool name), arguments, dependencies. */
export interface PlanStepInput {
  readonly key: string;
  readonly tool: string | { readonly name: string };
  readonly arguments: JsonValue;
  readonly dependsOn: readonly string[];
}

/** Whole-plan limits. */
export interface PlanLimits<TStep extends PlanStepInput = PlanStepInput> {
  maxSteps: number;
  /** The budget for the plan's estimated cost; with `estimateCostUsd`, a plan over it is refused. */
  maxCostUsd?: number;
  estimateCostUsd?: (steps: readonly TStep[]) => number;
}

/** A whole-plan failure; `stepId` names the step it is about, when there is one. */
export type PlanError = ErrorShape & { stepId?: string };

/**
 * The outcome of {@link validatePlan}: an execution order (topological, and otherwise the given order)
 * and each step's dependencies (explicit `dependsOn` plus every step referenced in its arguments).
 */
export type PlanValidation =
  | { ok: true; order: string[]; dependencies: ReadonlyMap<string, readonly string[]> }
  | { ok: false; error: PlanError };

function planFail(code: ErrorCode, message: string, stepId?: string): { ok: false; error: PlanError } {
  const error: PlanError = { code, message, retryable: false };
  if (stepId !== undefined) error.stepId = stepId;
  return { ok: false, error };
}

/**
 * The cheap first check of a plan: it has steps and no more than `maxSteps`. Call it with the number of
 * calls before validating each one, so a 500-step plan costs nothing. Null when fine.
 */
export function checkPlanSize(stepCount: number, limits: Pick<PlanLimits, 'maxSteps'>): PlanError | null {
  if (stepCount === 0)
    return { code: ErrorCodes.PLAN_EMPTY, message: 'the plan has no steps', retryable: false };
  if (stepCount > limits.maxSteps) {
    return {
      code: ErrorCodes.PLAN_TOO_MANY_STEPS,
      message: `the plan has ${stepCount} steps; the limit is ${limits.maxSteps}`,
      retryable: false,
    };
  }
  return null;
}

function toolName(step: PlanStepInput): string {
  return typeof step.tool === 'string' ? step.tool : step.tool.name;
}

/** Inserts into an ascending array, keeping it sorted. */
function insertSorted(list: number[], value: number): void {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((list[middle] ?? 0) < value) low = middle + 1;
    else high = middle;
  }
  list.splice(low, 0, value);
}

/**
 * Checks a whole plan, in order: step count (`PLAN.EMPTY`, `PLAN.TOO_MANY_STEPS`), step keys
 * (`PLAN.INVALID_STEP_ID`, `PLAN.DUPLICATE_STEP_ID`), exactly one `respond` and it is the last step
 * (`PLAN.MISSING_RESPOND`), every `dependsOn` and every `{{steps.<key>...}}` reference in any string
 * argument names a step of the plan (`PLAN.UNKNOWN_DEPENDENCY`), no step depends on `respond`
 * (`PLAN.BAD_REFERENCE`), no step depends on itself or on a cycle (`PLAN.CYCLE`, the cycle in the
 * message), and the estimated cost fits the budget (`PLAN.OVER_BUDGET`). Dependencies may point forward
 * in the given list; the returned order runs every step after its dependencies and otherwise keeps the
 * given order, so `respond` is always last.
 */
export function validatePlan<TStep extends PlanStepInput>(
  steps: readonly TStep[],
  limits: PlanLimits<TStep>,
): PlanValidation {
  const sizeError = checkPlanSize(steps.length, limits);
  if (sizeError) return { ok: false, error: sizeError };

  const indexByKey = new Map<string, number>();
  for (const [index, step] of steps.entries()) {
    if (typeof step.key !== 'string' || !STEP_KEY.test(step.key)) {
      return planFail(
        ErrorCodes.PLAN_INVALID_STEP_ID,
        `step ${index + 1} has the id ${JSON.stringify(String(step.key).slice(0, 80))}; ids are 1-64 letters, digits, _ or -`,
      );
    }
    if (indexByKey.has(step.key))
      return planFail(ErrorCodes.PLAN_DUPLICATE_STEP_ID, `two steps have the id ${step.key}`, step.key);
    indexByKey.set(step.key, index);
  }

  const responds = steps.filter((step) => toolName(step) === 'respond');
  const last = steps[steps.length - 1];
  if (responds.length !== 1 || !last || toolName(last) !== 'respond') {
    return planFail(
      ErrorCodes.PLAN_MISSING_RESPOND,
      responds.length === 1
        ? 'respond must be the last step of the plan'
        : `a plan must end with exactly one respond call; it has ${responds.length}`,
      responds.length === 1 ? responds[0]?.key : undefined,
    );
  }
  const respondKey = last.key;

  const dependencies: number[][] = [];
  const dependencyKeys = new Map<string, readonly string[]>();
  for (const step of steps) {
    const keys: string[] = [];
    for (const dependency of step.dependsOn) {
      if (!indexByKey.has(dependency)) {
        return planFail(
          ErrorCodes.PLAN_UNKNOWN_DEPENDENCY,
          `step ${step.key} depends on ${JSON.stringify(String(dependency).slice(0, 80))}, which is not a step of this plan`,
          step.key,
        );
      }
      keys.push(dependency);
    }
    for (const reference of referencedStepKeysDeep(step.arguments)) {
      if (!indexByKey.has(reference)) {
        return planFail(
          ErrorCodes.PLAN_UNKNOWN_DEPENDENCY,
          `step ${step.key} refers to {{steps.${reference}...}}, but the plan has no step ${reference}`,
          step.key,
        );
      }
      keys.push(reference);
    }
    const unique = [...new Set(keys)];
    if (unique.includes(step.key))
      return planFail(ErrorCodes.PLAN_CYCLE, `step ${step.key} depends on itself`, step.key);
    if (step.key !== respondKey && unique.includes(respondKey)) {
      return planFail(
        ErrorCodes.PLAN_BAD_REFERENCE,
        `step ${step.key} depends on ${respondKey}, the respond step, which runs last; nothing may depend on it`,
        step.key,
      );
    }
    dependencyKeys.set(step.key, unique);
    dependencies.push(unique.map((key) => indexByKey.get(key) ?? -1));
  }

  // Kahn's algorithm, always taking the ready step that comes first in the given order.
  const waitingOn = dependencies.map((list) => list.length);
  const dependents: number[][] = steps.map(() => []);
  dependencies.forEach((list, index) => list.forEach((dependency) => dependents[dependency]?.push(index)));
  const ready: number[] = [];
  waitingOn.forEach((count, index) => {
    if (count === 0) ready.push(index);
  });
  const order: string[] = [];
  while (ready.length > 0) {
    const next = ready.shift() ?? 0;
    order.push(steps[next]?.key ?? '');
    for (const dependent of dependents[next] ?? []) {
      waitingOn[dependent] = (waitingOn[dependent] ?? 0) - 1;
      if (waitingOn[dependent] === 0) insertSorted(ready, dependent);
    }
  }
  if (order.length < steps.length) {
    // Every step left waits on another step left: follow those edges until one repeats.
    const left = new Set(waitingOn.flatMap((count, index) => (count > 0 ? [index] : [])));
    const path: number[] = [];
    const position = new Map<number, number>();
    let current = Math.min(...left);
    while (!position.has(current)) {
      position.set(current, path.length);
      path.push(current);
      current = (dependencies[current] ?? []).find((dependency) => left.has(dependency)) ?? current;
    }
    const cycle = path.slice(position.get(current));
    const start = cycle.indexOf(Math.min(...cycle));
    const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
    const names = [...rotated, rotated[0] ?? 0].map((index) => steps[index]?.key ?? '');
    return planFail(
      ErrorCodes.PLAN_CYCLE,
      `the steps depend on each other in a cycle: ${names.join(' -> ')} (each waits for the next)`,
      names[0],
    );
  }

  if (limits.maxCostUsd !== undefined && limits.estimateCostUsd) {
    const estimate = limits.estimateCostUsd(steps);
    if (!Number.isFinite(estimate) || estimate > limits.maxCostUsd) {
      return planFail(
        ErrorCodes.PLAN_OVER_BUDGET,
        `the plan's estimated cost ($${Number.isFinite(estimate) ? estimate.toFixed(4) : 'unknown'}) is over the budget ($${limits.maxCostUsd.toFixed(4)})`,
      );
    }
  }
  return { ok: true, order, dependencies: dependencyKeys };
}
