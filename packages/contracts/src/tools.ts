import { z } from 'zod';

/** How much harm a tool can do; the approval service auto-approves the classes its config names. */
export const RiskClass = z.enum(['read', 'compute', 'write', 'network', 'destructive']);
/** How much harm a tool can do. */
export type RiskClass = z.infer<typeof RiskClass>;

/** A semantic problem found after the schema passed (paths, hosts, sizes). */
export interface SemanticIssue {
  path: Array<string | number>;
  message: string;
}

/** A function-calling tool, declared once: the model sees its JSON Schema, validators use its zod input. */
export interface ToolDefinition<TInput extends z.ZodType = z.ZodType, TOutput extends z.ZodType = z.ZodType> {
  /** snake_case verb_noun; wire name: renaming it breaks stored plans and prompts. */
  readonly name: string;
  readonly description: string;
  readonly input: TInput;
  readonly output: TOutput;
  readonly risk: RiskClass;
  readonly sideEffects: boolean;
  /** Checks beyond the schema; returns the problems found (empty when fine). */
  readonly check?: (input: z.infer<TInput>) => SemanticIssue[];
}

/** Declares a tool once. */
export function defineTool<TInput extends z.ZodType, TOutput extends z.ZodType>(
  definition: ToolDefinition<TInput, TOutput>,
): ToolDefinition<TInput, TOutput> {
  if (!/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(definition.name)) {
    throw new Error(`tool name ${definition.name} must be snake_case`);
  }
  return definition;
}

/** Caps on `run_code`. */
export const RUN_CODE_MAX_CODE_CHARS = 100_000;
const RUN_CODE_MAX_SPEC_CHARS = 10_000;

/** Runs code in the sandbox; with `spec` instead of `code`, the code model writes the code first. */
export const runCode = defineTool({
  name: 'run_code',
  description:
    'Run a program in an isolated sandbox with no network and no host files. Give either `code` (the program) ' +
    'or `spec` (a precise description the code model will implement), not both. The program sees the task input ' +
    'as a variable named `input` and returns its answer by assigning a JSON-serialisable value to a variable ' +
    'named `result` (JavaScript may also `return` it). Later steps can use it as {{steps.<stepId>.value}}.',
  input: z.strictObject({
    language: z.enum(['javascript', 'python']).describe('The programming language.'),
    code: z.string().min(1).max(RUN_CODE_MAX_CODE_CHARS).optional().describe('The program to run.'),
    spec: z
      .string()
      .min(1)
      .max(RUN_CODE_MAX_SPEC_CHARS)
      .optional()
      .describe('What the program must compute, for the code model.'),
  }),
  output: z.object({
    outcome: z.string(),
    value: z.json().nullable(),
    stdout: z.string(),
    stderr: z.string(),
  }),
  risk: 'compute',
  sideEffects: false,
  check: (input) => {
    const hasCode = input.code !== undefined;
    const hasSpec = input.spec !== undefined;
    if (hasCode === hasSpec) return [{ path: ['code'], message: 'give exactly one of `code` or `spec`' }];
    return [];
  },
});

/** The task's final answer; may reference earlier results as {{steps.<stepId>.value}}. */
export const respond = defineTool({
  name: 'respond',
  description:
    "Give the task's final answer. It must be the last step. The answer may include an earlier step's result " +
    'as {{steps.<stepId>.value}} (or a field of it, {{steps.<stepId>.value.total}}) or its printed output as {{steps.<stepId>.stdout}}; step ids are s1, s2, ... in the ' +
    'order of your calls.',
  input: z.strictObject({
    answer: z.string().min(1).max(20_000).describe('The final answer for the user.'),
  }),
  output: z.object({ answer: z.string() }),
  risk: 'read',
  sideEffects: false,
});

/** Every tool the planner may use, by name. */
export const toolRegistry: ReadonlyMap<string, ToolDefinition> = new Map<string, ToolDefinition>([
  [runCode.name, runCode as unknown as ToolDefinition],
  [respond.name, respond as unknown as ToolDefinition],
]);

/** An OpenAI function tool definition in strict mode. */
export interface ModelToolSchema {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown>; strict: true };
}

type JsonSchemaNode = Record<string, unknown>;

function isNode(value: unknown): value is JsonSchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Rewrites a JSON Schema for OpenAI strict mode: every property listed in `required`, optional ones made
 * nullable, `additionalProperties: false` everywhere; free-form maps are refused (strict mode can't express them).
 */
export function toStrictJsonSchema(schema: JsonSchemaNode): JsonSchemaNode {
  const visit = (node: JsonSchemaNode, path: string): JsonSchemaNode => {
    const out: JsonSchemaNode = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === '$schema') continue;
      out[key] = value;
    }
    if (node['type'] === 'object') {
      const properties = isNode(node['properties']) ? node['properties'] : {};
      if (node['additionalProperties'] !== undefined && node['additionalProperties'] !== false) {
        throw new Error(`strict mode cannot express a free-form map at ${path || '/'}`);
      }
      const required = new Set(
        Array.isArray(node['required']) ? node['required'].filter((v) => typeof v === 'string') : [],
      );
      const nextProperties: Record<string, JsonSchemaNode> = {};
      for (const [name, child] of Object.entries(properties)) {
        if (!isNode(child)) continue;
        const converted = visit(child, `${path}/${name}`);
        nextProperties[name] = required.has(name) ? converted : { anyOf: [converted, { type: 'null' }] };
      }
      out['properties'] = nextProperties;
      out['required'] = Object.keys(nextProperties);
      out['additionalProperties'] = false;
    }
    if (isNode(node['items'])) out['items'] = visit(node['items'], `${path}/items`);
    for (const combinator of ['anyOf', 'oneOf', 'allOf']) {
      const list = node[combinator];
      if (Array.isArray(list))
        out[combinator] = list.map((item, index) =>
          isNode(item) ? visit(item, `${path}/${combinator}/${index}`) : item,
        );
    }
    // Numeric bounds zod adds for safe integers are noise to the model and unsupported by some servers.
    if (out['minimum'] === Number.MIN_SAFE_INTEGER) delete out['minimum'];
    if (out['maximum'] === Number.MAX_SAFE_INTEGER) delete out['maximum'];
    return out;
  };
  return visit(schema, '');
}

/** The tools as the model sees them: JSON Schema generated from the zod input, strict mode. */
export function toModelTools(tools: Iterable<ToolDefinition>): ModelToolSchema[] {
  const result: ModelToolSchema[] = [];
  for (const tool of tools) {
    const jsonSchema = z.toJSONSchema(tool.input, {
      target: 'draft-2020-12',
      io: 'input',
      unrepresentable: 'throw',
    });
    result.push({
      type: 'function',
      function: {
        name: tool.name,
        description: tool.description,
        parameters: toStrictJsonSchema(jsonSchema),
        strict: true,
      },
    });
  }
  return result;
}
