import { z } from 'zod';
import { ErrorCodes, type ErrorCode } from './errors.js';
import { CREDENTIAL_HEADERS, SECRET_NAME, headerNameProblem, headerValueProblem } from './http-headers.js';
import { isWellFormedText, utf8ByteLength } from './json.js';
import { URL_MAX_CHARS, checkUrl } from './url-policy.js';
import {
  WORKSPACE_PATH_MAX_CHARS,
  normalizeWorkspaceDirectory,
  normalizeWorkspacePath,
} from './workspace-paths.js';

/** How much harm a tool can do; the approval service auto-approves the classes its config names. */
export const RiskClass = z.enum(['read', 'compute', 'write', 'network', 'destructive']);
/** How much harm a tool can do. */
export type RiskClass = z.infer<typeof RiskClass>;

/** A semantic problem found after the schema passed (paths, hosts, sizes). */
export interface SemanticIssue {
  path: Array<string | number>;
  message: string;
  /** The error code the call fails with (default `TOOL.SEMANTIC_CHECK_FAILED`). */
  code?: ErrorCode;
}

/** Deployment settings the semantic checks need (from the planner's or executor's config). */
export interface ToolCheckContext {
  http: {
    /** Exact hosts, IP literals or `*.example.com`; empty refuses every http_request. */
    allowHosts: readonly string[];
    /** https only unless true. */
    allowHttp: boolean;
    /** Private ranges an operator opened (e.g. an internal API); see `isAddressAllowed`. */
    allowPrivateCidrs?: readonly string[];
  };
  runCode: {
    /** Languages the sandbox runs here (a subset of the schema's). */
    languages: readonly string[];
    /** Longest `code`, in characters (at most {@link RUN_CODE_MAX_CODE_CHARS}). */
    maxCodeChars: number;
  };
}

/** A function-calling tool, declared once: the model sees its JSON Schema, validators use its zod input. */
export interface ToolDefinition<TInput extends z.ZodType = z.ZodType, TOutput extends z.ZodType = z.ZodType> {
  /** snake_case verb_noun; wire name: renaming it breaks stored plans and prompts. */
  readonly name: string;
  readonly description: string;
  readonly input: TInput;
  readonly output: TOutput;
  readonly risk: RiskClass;
  /** Whether running it changes something outside Tandem (the workspace is Tandem's own store). */
  readonly sideEffects: boolean;
  /** Checks beyond the schema; returns the problems found (empty when fine). */
  readonly check?: (input: z.infer<TInput>, context: ToolCheckContext) => SemanticIssue[];
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
/** Largest `write_file` content, in UTF-8 bytes. */
export const WRITE_FILE_MAX_BYTES = 1024 * 1024;
/** Largest `http_request` body, in characters. */
export const HTTP_REQUEST_MAX_BODY_CHARS = 100_000;
/** Most headers on one `http_request`. */
export const HTTP_REQUEST_MAX_HEADERS = 32;

/** The settings the checks use when a caller gives none: no hosts, https only, both languages. */
export const DEFAULT_TOOL_CHECK_CONTEXT: ToolCheckContext = Object.freeze({
  http: Object.freeze({ allowHosts: Object.freeze([]) as readonly string[], allowHttp: false }),
  runCode: Object.freeze({
    languages: Object.freeze(['javascript', 'python']) as readonly string[],
    maxCodeChars: RUN_CODE_MAX_CODE_CHARS,
  }),
});

const REFERENCES_HELP =
  'Earlier results can be inserted into any string argument as {{steps.<stepId>.value}} (or a field, ' +
  '{{steps.<stepId>.value.total}}) or {{steps.<stepId>.stdout}}; step ids are s1, s2, ... in the order ' +
  'of your calls, and a reference makes this step wait for that one.';

const PATH_HELP =
  'Paths are relative to the task workspace and use / between directories, e.g. `reports/q1.csv`; ' +
  'absolute paths, `..`, backslashes and percent-encoding are rejected.';

/** Runs code in the sandbox; with `spec` instead of `code`, the code model writes the code first. */
export const runCode = defineTool({
  name: 'run_code',
  description:
    'Run a program in an isolated sandbox with no network and no host files. Give either `code` (the program) ' +
    'or `spec` (a precise description the code model will implement), not both. The program sees the task input ' +
    'as a variable named `input` and returns its answer by assigning a JSON-serialisable value to a variable ' +
    'named `result` (JavaScript may also `return` it). Python is CPython with its standard library; JavaScript ' +
    'is plain ECMAScript (QuickJS: no `require`, Node.js modules, timers or `fetch`). The files of the task workspace are in its working ' +
    'directory, and files it writes there are saved back to the workspace. Later steps can use its result as ' +
    '{{steps.<stepId>.value}}.',
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
  check: (input, context) => {
    const hasCode = input.code !== undefined;
    const hasSpec = input.spec !== undefined;
    if (hasCode === hasSpec) return [{ path: ['code'], message: 'give exactly one of `code` or `spec`' }];
    if (!context.runCode.languages.includes(input.language)) {
      return [
        {
          path: ['language'],
          code: ErrorCodes.TOOL_LANGUAGE_UNSUPPORTED,
          message: `${input.language} is not available here; use one of: ${context.runCode.languages.join(', ')}`,
        },
      ];
    }
    if (input.code !== undefined && input.code.length > context.runCode.maxCodeChars) {
      return [
        {
          path: ['code'],
          code: ErrorCodes.TOOL_CODE_TOO_LARGE,
          message: `the code is ${input.code.length} characters; the limit is ${context.runCode.maxCodeChars}`,
        },
      ];
    }
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
  /** The stored step value is the answer itself, with every reference resolved. */
  output: z.string(),
  risk: 'read',
  sideEffects: false,
});

const WorkspacePath = z.string().min(1).max(WORKSPACE_PATH_MAX_CHARS);

function pathIssue(field: string, raw: string | undefined, directory: boolean): SemanticIssue[] {
  const result = directory ? normalizeWorkspaceDirectory(raw) : normalizeWorkspacePath(raw ?? '');
  return result.ok ? [] : [{ path: [field], code: ErrorCodes.TOOL_PATH_REJECTED, message: result.reason }];
}

/** Reads a text file from the task's workspace. */
export const readFile = defineTool({
  name: 'read_file',
  description:
    "Read a UTF-8 text file from the task's workspace (Tandem's per-task file store, not a computer's disk). " +
    `${PATH_HELP} Later steps can use the content as {{steps.<stepId>.value.content}}.`,
  input: z.strictObject({
    path: WorkspacePath.describe('The file, relative to the workspace, e.g. `reports/q1.csv`.'),
  }),
  output: z.object({
    path: z.string(),
    /** UTF-8 text, or base64 when the bytes are not valid UTF-8 (see `encoding`). */
    content: z.string(),
    encoding: z.enum(['utf8', 'base64']),
    size: z.number().int().nonnegative(),
  }),
  risk: 'read',
  sideEffects: false,
  check: (input) => pathIssue('path', input.path, false),
});

/** Writes (creates or replaces) a text file in the task's workspace. */
export const writeFile = defineTool({
  name: 'write_file',
  description:
    "Create or replace a UTF-8 text file in the task's workspace (Tandem's per-task file store, not a " +
    `computer's disk); directories are created as needed. ${PATH_HELP} The content is at most 1 MiB. ` +
    REFERENCES_HELP,
  input: z.strictObject({
    path: WorkspacePath.describe('The file, relative to the workspace, e.g. `reports/summary.md`.'),
    content: z.string().max(WRITE_FILE_MAX_BYTES).describe('The whole text of the file.'),
  }),
  output: z.object({ path: z.string(), size: z.number().int().nonnegative(), sha256: z.string() }),
  risk: 'write',
  sideEffects: false,
  check: (input) => {
    const issues = pathIssue('path', input.path, false);
    if (!isWellFormedText(input.content))
      issues.push({ path: ['content'], message: 'the content is not valid Unicode text' });
    else if (utf8ByteLength(input.content) > WRITE_FILE_MAX_BYTES)
      issues.push({
        path: ['content'],
        message: `the content is over ${WRITE_FILE_MAX_BYTES} bytes of UTF-8`,
      });
    return issues;
  },
});

/**
 * Deletes one file from the task's workspace. Deleting a file that is not there is not an error (the
 * result says `deleted: false`): unlike `read_file`, which has nothing to return for a missing file, the
 * state the step asks for already holds, and failing it would only spend a re-plan. Destructive, so the
 * approval service asks a human before it runs.
 */
export const deleteFile = defineTool({
  name: 'delete_file',
  description:
    "Delete one file from the task's workspace (Tandem's per-task file store, not a computer's disk). " +
    'Deleting always asks a human first: the step waits until a person approves it, so delete only what the ' +
    'task needs gone. Directories are not deleted, only the file at exactly this path. A file that does not ' +
    `exist is not an error: the result's \`deleted\` is false. ${PATH_HELP}`,
  input: z.strictObject({
    path: WorkspacePath.describe('The file, relative to the workspace, e.g. `reports/draft.md`.'),
  }),
  output: z.object({
    path: z.string(),
    /** False when the workspace had no file at this path (nothing to delete is not an error). */
    deleted: z.boolean(),
  }),
  risk: 'destructive',
  sideEffects: false,
  check: (input) => pathIssue('path', input.path, false),
});

/** Lists the files of the task's workspace, optionally under one directory. */
export const listFiles = defineTool({
  name: 'list_files',
  description:
    "List the files in the task's workspace with their sizes, optionally only those under a directory " +
    '(`prefix`, e.g. `reports`; omit it or give null for the whole workspace). ' +
    PATH_HELP,
  input: z.strictObject({
    prefix: z
      .string()
      .max(WORKSPACE_PATH_MAX_CHARS)
      .optional()
      .describe('A directory relative to the workspace, e.g. `reports`; null lists everything.'),
  }),
  output: z.object({
    files: z.array(z.object({ path: z.string(), size: z.number().int().nonnegative() })),
  }),
  risk: 'read',
  sideEffects: false,
  check: (input) => pathIssue('prefix', input.prefix, true),
});

/** One request header: a literal value, or the name of a secret the executor fills in. */
const HttpHeader = z.strictObject({
  name: z.string().min(1).max(64).describe('The header name, e.g. `Accept` or `Authorization`.'),
  value: z.string().max(8192).optional().describe('A literal value; null when `secret` is given.'),
  secret: z
    .string()
    .regex(SECRET_NAME)
    .optional()
    .describe('The name of a secret (e.g. `GITHUB_TOKEN`) whose value is sent; null when `value` is given.'),
});

/** Sends one HTTP request to an allow-listed host. */
export const httpRequest = defineTool({
  name: 'http_request',
  description:
    'Send one HTTP request to an external service and get its status, headers and body (text, possibly ' +
    'truncated). Only https URLs on hosts the operator allowed work; private, loopback and cloud metadata ' +
    'addresses are always refused, also after redirects. Never put credentials in the URL or in a header ' +
    'value: give the name of a secret in `secret` (e.g. {"name": "Authorization", "secret": "GITHUB_TOKEN"}) ' +
    'and Tandem sends its value without showing it to anyone; Authorization and Cookie headers must use a ' +
    'secret. Each header has exactly one of `value` or `secret`. Host, Content-Length, Connection, ' +
    'Transfer-Encoding and similar headers are set by Tandem and may not be given. GET and HEAD have no body. ' +
    REFERENCES_HELP,
  input: z.strictObject({
    method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).describe('The HTTP method.'),
    url: z
      .string()
      .min(1)
      .max(URL_MAX_CHARS)
      .describe('The absolute URL, e.g. `https://api.example.com/v1/items`.'),
    headers: z
      .array(HttpHeader)
      .max(HTTP_REQUEST_MAX_HEADERS)
      .optional()
      .describe('Request headers as a list of {name, value} or {name, secret}.'),
    body: z
      .string()
      .max(HTTP_REQUEST_MAX_BODY_CHARS)
      .optional()
      .describe('The request body as text (for JSON, the JSON text; set Content-Type to match).'),
  }),
  output: z.object({
    status: z.number().int(),
    headers: z.record(z.string(), z.string()),
    body: z.string(),
    truncated: z.boolean(),
    /** The body parsed as JSON when the response said it is JSON and was not truncated. */
    json: z.json().nullable(),
    /** The URL that answered (after redirects). */
    url: z.string(),
  }),
  risk: 'network',
  sideEffects: true,
  check: (input, context) => {
    const issues: SemanticIssue[] = [];
    const url = checkUrl(input.url, context.http);
    if (!url.ok) issues.push({ path: ['url'], code: ErrorCodes.TOOL_URL_REJECTED, message: url.reason });
    (input.headers ?? []).forEach((header, index) => {
      const path = ['headers', index];
      const label = `header ${JSON.stringify(header.name.slice(0, 64))}`;
      const nameProblem = headerNameProblem(header.name);
      if (nameProblem !== null) {
        issues.push({
          path: [...path, 'name'],
          code: ErrorCodes.TOOL_HEADER_REJECTED,
          message: `${label} ${nameProblem}`,
        });
        return;
      }
      if ((header.value === undefined) === (header.secret === undefined)) {
        issues.push({
          path,
          code: ErrorCodes.TOOL_HEADER_REJECTED,
          message: `${label} needs exactly one of \`value\` or \`secret\``,
        });
        return;
      }
      if (header.value !== undefined) {
        if (CREDENTIAL_HEADERS.has(header.name.toLowerCase())) {
          issues.push({
            path: [...path, 'value'],
            code: ErrorCodes.TOOL_HEADER_REJECTED,
            message: `${label} carries credentials: reference a secret by name in \`secret\` instead of a value`,
          });
          return;
        }
        const valueProblem = headerValueProblem(header.value);
        if (valueProblem !== null)
          issues.push({
            path: [...path, 'value'],
            code: ErrorCodes.TOOL_HEADER_REJECTED,
            message: `${label} ${valueProblem}`,
          });
      }
    });
    if (input.body !== undefined && (input.method === 'GET' || input.method === 'HEAD'))
      issues.push({ path: ['body'], message: `${input.method} requests have no body` });
    return issues;
  },
});

/** Asks a person a question; the step waits for the answer, which later steps can use. */
export const askHuman = defineTool({
  name: 'ask_human',
  description:
    'Ask a person a question when the task cannot go on without information or a decision only a human ' +
    'has. The step waits until someone answers (through the approval queue); later steps can use the ' +
    'answer as {{steps.<stepId>.value.answer}}. Give `choices` when the answer is one of a few options.',
  input: z.strictObject({
    question: z.string().min(1).max(2000).describe('The question, self-contained and specific.'),
    choices: z
      .array(z.string().min(1).max(200))
      .min(2)
      .max(10)
      .optional()
      .describe('The possible answers, when the answer must be one of them; null for a free answer.'),
  }),
  output: z.object({ answer: z.string() }),
  risk: 'read',
  sideEffects: false,
  check: (input) => {
    const choices = input.choices ?? [];
    return new Set(choices).size === choices.length
      ? []
      : [{ path: ['choices'], message: 'the choices must be different from each other' }];
  },
});

/** Every tool the planner may use, by name. */
export const toolRegistry: ReadonlyMap<string, ToolDefinition> = new Map<string, ToolDefinition>(
  [runCode, respond, readFile, writeFile, deleteFile, listFiles, httpRequest, askHuman].map((tool) => [
    tool.name,
    tool as unknown as ToolDefinition,
  ]),
);

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
