import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import {
  HttpUrl,
  ModelsConfigError,
  modelsConfigFromEnv,
  nonEmpty,
  OPENAI_BASE_URL,
  SecretInput,
} from './config.js';
import type { ModelRole, ModelsConfig } from './config.js';
import { MaxTokensField } from './endpoint.js';
import { redactSecrets } from './secret.js';

/**
 * One model at one OpenAI-compatible endpoint that a role may call. `apiKey` is a `Secret` after
 * parsing (a string is accepted as input).
 */
export const ModelCandidate = z.strictObject({
  /** Unique among the candidates; roles list these ids, records and metrics carry them. */
  id: z.string().regex(/^\S{1,200}$/, 'must be 1-200 characters without spaces'),
  /** The model id the endpoint knows (`gpt-4.1`, `qwen2.5-coder:7b`, ...). */
  model: z.string().min(1),
  baseURL: HttpUrl,
  apiKey: SecretInput,
  /** Free-form class a task may ask for (`fast`, `strong`, ...). */
  tier: z
    .string()
    .regex(/^\S{1,100}$/, 'must be 1-100 characters without spaces')
    .default('default'),
  /** USD per million prompt tokens. */
  inputUsdPerMTok: z.number().nonnegative().default(0),
  /** USD per million completion tokens. */
  outputUsdPerMTok: z.number().nonnegative().default(0),
  /** Context window in tokens; a larger prompt skips this candidate. */
  contextTokens: z.number().int().positive().default(128_000),
  /** Per HTTP attempt. */
  timeoutMs: z.number().int().positive().default(60_000),
  /** SDK retries on this same candidate before falling back to the next one. */
  maxRetries: z.number().int().min(0).max(10).default(0),
  /** Field that caps the answer's length; default `max_completion_tokens` for OpenAI and Azure, `max_tokens` elsewhere. */
  maxTokensField: MaxTokensField.optional(),
});
/** One model at one OpenAI-compatible endpoint that a role may call. */
export type ModelCandidate = z.infer<typeof ModelCandidate>;

/** When a candidate's circuit breaker opens and for how long. */
export const BreakerConfig = z.strictObject({
  /** Consecutive fallback-worthy failures that open the breaker. */
  failureThreshold: z.number().int().positive().default(3),
  /** How long an open breaker skips the candidate before one trial call. */
  cooldownMs: z.number().int().positive().default(30_000),
});
/** When a candidate's circuit breaker opens and for how long. */
export type BreakerConfig = z.infer<typeof BreakerConfig>;

const CandidateList = z.array(z.string().min(1)).min(1, 'needs at least one candidate id');

/** Every candidate, the ordered candidate ids of each role, and the breaker settings. */
export const SelectorConfig = z
  .strictObject({
    candidates: z.array(ModelCandidate).min(1, 'needs at least one candidate'),
    roles: z.strictObject({ planning: CandidateList, code: CandidateList }),
    breaker: BreakerConfig.prefault({}),
  })
  .check((context) => {
    const { candidates, roles } = context.value;
    const seen = new Set<string>();
    candidates.forEach((candidate, index) => {
      if (seen.has(candidate.id)) {
        context.issues.push({
          code: 'custom',
          message: `duplicate candidate id "${candidate.id}"`,
          input: candidate.id,
          path: ['candidates', index, 'id'],
        });
      }
      seen.add(candidate.id);
    });
    for (const role of ['planning', 'code'] as const) {
      const listed = new Set<string>();
      roles[role].forEach((id, index) => {
        if (!seen.has(id)) {
          context.issues.push({
            code: 'custom',
            message: `"${id}" is not a candidate id (candidates: ${[...seen].join(', ')})`,
            input: id,
            path: ['roles', role, index],
          });
        } else if (listed.has(id)) {
          context.issues.push({
            code: 'custom',
            message: `"${id}" is listed twice`,
            input: id,
            path: ['roles', role, index],
          });
        }
        listed.add(id);
      });
    }
  });
/** Every candidate, the ordered candidate ids of each role, and the breaker settings. */
export type SelectorConfig = z.infer<typeof SelectorConfig>;

/**
 * Selector config from an env-like record. With `TANDEM_MODELS_FILE` set, the JSON (`.json`) or YAML
 * (`.yaml`, `.yml`) file it names is the whole config (keys come from the variables its candidates
 * name in `apiKeyEnv`); otherwise the variables of `modelsConfigFromEnv` give one candidate per role,
 * plus `TANDEM_<ROLE>_FALLBACK_MODELS` and `TANDEM_MODEL_PRICES`. Throws `ModelsConfigError` listing
 * every problem; secrets never appear in its messages. `readFile` defaults to reading UTF-8 from disk.
 */
export function selectorConfigFromEnv(
  env: Record<string, string | undefined>,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): SelectorConfig {
  const file = nonEmpty(env['TANDEM_MODELS_FILE']);
  return file === undefined ? fromVariables(env) : fromFile(file, env, readFile);
}

/** Parses a selector config object (as read from a file), throwing `ModelsConfigError` with every problem. */
export function parseSelectorConfig(input: unknown): SelectorConfig {
  const parsed = SelectorConfig.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new ModelsConfigError(zodProblems(parsed.error, 'config', []));
}

function zodProblems(error: z.ZodError, where: string, secrets: readonly string[]): string[] {
  // zod's messages name the expected value, never the input, so only ids and hosts can show.
  return error.issues.map((issue) =>
    redactSecrets(`${where}: ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`, secrets),
  );
}

// ---- env variables -------------------------------------------------------------------------------

const KEY_VARIABLES = ['OPENAI_API_KEY', 'TANDEM_PLANNING_API_KEY', 'TANDEM_CODE_API_KEY'] as const;

function fromVariables(env: Record<string, string | undefined>): SelectorConfig {
  const secrets = KEY_VARIABLES.map((name) => nonEmpty(env[name])).filter((key) => key !== undefined);
  try {
    return fromVariablesUnredacted(env);
  } catch (error) {
    if (!(error instanceof ModelsConfigError)) throw error;
    throw new ModelsConfigError(error.issues.map((issue) => redactSecrets(issue, secrets)));
  }
}

function fromVariablesUnredacted(env: Record<string, string | undefined>): SelectorConfig {
  const issues: string[] = [];
  let base: ModelsConfig | undefined;
  try {
    base = modelsConfigFromEnv(env);
  } catch (error) {
    if (!(error instanceof ModelsConfigError)) throw error;
    issues.push(...error.issues);
  }
  const fallbacks = {
    planning: modelList(env, 'TANDEM_PLANNING_FALLBACK_MODELS', issues),
    code: modelList(env, 'TANDEM_CODE_FALLBACK_MODELS', issues),
  };
  const prices = parsePrices(nonEmpty(env['TANDEM_MODEL_PRICES']), issues);
  if (base === undefined) throw new ModelsConfigError(issues);

  // The selector falls back instead of retrying, so SDK retries are off unless asked for.
  const maxRetries = nonEmpty(env['TANDEM_MODEL_MAX_RETRIES']) === undefined ? 0 : base.maxRetries;
  const candidates: Array<z.input<typeof ModelCandidate>> = [];
  const roles: Record<ModelRole, string[]> = { planning: [], code: [] };
  for (const role of ['planning', 'code'] as const) {
    const { model, baseURL, apiKey } = base[role];
    const variable = role === 'planning' ? 'TANDEM_PLANNING_FALLBACK_MODELS' : 'TANDEM_CODE_FALLBACK_MODELS';
    const models = [model];
    for (const fallback of fallbacks[role]) {
      if (models.includes(fallback)) issues.push(`${variable}: "${fallback}" is already a ${role} model`);
      else models.push(fallback);
    }
    for (const name of models) {
      const price = prices.get(name);
      const id = `${role}:${name}`;
      candidates.push({
        id,
        model: name,
        baseURL,
        apiKey,
        timeoutMs: base.timeoutMs,
        maxRetries,
        ...(price === undefined ? {} : { inputUsdPerMTok: price.input, outputUsdPerMTok: price.output }),
      });
      roles[role].push(id);
    }
  }
  const used = new Set(candidates.map((candidate) => candidate.model));
  for (const name of prices.keys()) {
    if (!used.has(name)) {
      issues.push(
        `TANDEM_MODEL_PRICES: "${name}" is not a planning or code model (a typo would leave it unpriced)`,
      );
    }
  }
  if (issues.length > 0) throw new ModelsConfigError(issues);
  const parsed = SelectorConfig.safeParse({ candidates, roles });
  if (!parsed.success) throw new ModelsConfigError(zodProblems(parsed.error, 'env', []));
  return parsed.data;
}

function modelList(env: Record<string, string | undefined>, variable: string, issues: string[]): string[] {
  const value = nonEmpty(env[variable]);
  if (value === undefined) return [];
  const names = value.split(',').map((name) => name.trim());
  if (names.some((name) => name === '' || /\s/.test(name))) {
    issues.push(`${variable}: must be comma-separated model ids, e.g. "gpt-4.1-mini,gpt-4o-mini"`);
    return [];
  }
  return names;
}

const PRICE = /^(?<name>\S+)=(?<input>\d+(?:\.\d+)?):(?<output>\d+(?:\.\d+)?)$/;

function parsePrices(
  value: string | undefined,
  issues: string[],
): Map<string, { input: number; output: number }> {
  const prices = new Map<string, { input: number; output: number }>();
  if (value === undefined) return prices;
  value.split(',').forEach((part, index) => {
    const groups = PRICE.exec(part.trim())?.groups;
    if (groups?.['name'] === undefined || groups['input'] === undefined || groups['output'] === undefined) {
      // The entry is not echoed: a key pasted into the wrong variable must not reach a log.
      issues.push(
        `TANDEM_MODEL_PRICES: entry ${index + 1} is not model=input:output in USD per million tokens, e.g. "gpt-4.1=2:8"`,
      );
      return;
    }
    if (prices.has(groups['name'])) issues.push(`TANDEM_MODEL_PRICES: "${groups['name']}" is priced twice`);
    prices.set(groups['name'], { input: Number(groups['input']), output: Number(groups['output']) });
  });
  return prices;
}

// ---- config file ---------------------------------------------------------------------------------

function fromFile(
  path: string,
  env: Record<string, string | undefined>,
  readFile: (path: string) => string,
): SelectorConfig {
  const where = `TANDEM_MODELS_FILE ${path}`;
  const extension = extname(path).toLowerCase();
  if (extension !== '.json' && extension !== '.yaml' && extension !== '.yml') {
    throw new ModelsConfigError([`${where}: must end in .json, .yaml or .yml`]);
  }
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw new ModelsConfigError([`${where}: cannot be read (${errorCode(error)})`]);
  }
  let raw: unknown;
  try {
    raw = extension === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    // Parser messages quote the offending source, which may hold a key: keep only the position.
    throw new ModelsConfigError([`${where}: ${syntaxProblem(extension, error)}`]);
  }
  const issues: string[] = [];
  const secrets: string[] = [];
  const resolved = resolveKeys(raw, env, issues, secrets);
  const parsed = SelectorConfig.safeParse(resolved);
  const problems = [
    ...issues.map((issue) => `${where}: ${issue}`),
    ...(parsed.success ? [] : zodProblems(parsed.error, where, secrets)),
  ];
  if (problems.length > 0 || !parsed.success) throw new ModelsConfigError(problems);
  return parsed.data;
}

const UNUSED_KEY = 'unused';
const EnvName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Replaces each candidate's `apiKeyEnv` by the key it names; a keyless local endpoint gets `unused`. */
function resolveKeys(
  raw: unknown,
  env: Record<string, string | undefined>,
  issues: string[],
  secrets: string[],
): unknown {
  if (!isRecord(raw) || !Array.isArray(raw['candidates'])) return raw;
  const candidates = raw['candidates'].map((candidate: unknown, index) => {
    if (!isRecord(candidate)) return candidate;
    const { apiKeyEnv, ...rest } = candidate;
    const label = `candidates.${index}${typeof rest['id'] === 'string' ? ` ("${rest['id']}")` : ''}`;
    if (typeof rest['apiKey'] === 'string') secrets.push(rest['apiKey']);
    if (apiKeyEnv !== undefined) {
      if (typeof apiKeyEnv !== 'string' || !EnvName.test(apiKeyEnv)) {
        issues.push(`${label}.apiKeyEnv: must be the name of an environment variable`);
        return { ...rest, apiKey: UNUSED_KEY };
      }
      if (rest['apiKey'] !== undefined) {
        issues.push(`${label}: give apiKey or apiKeyEnv, not both`);
        return { ...rest, apiKey: UNUSED_KEY };
      }
      const key = nonEmpty(env[apiKeyEnv]);
      if (key === undefined) {
        issues.push(`${label}.apiKeyEnv: ${apiKeyEnv} is not set`);
        return { ...rest, apiKey: UNUSED_KEY };
      }
      secrets.push(key);
      return { ...rest, apiKey: key };
    }
    if (rest['apiKey'] !== undefined) return rest;
    if (typeof rest['baseURL'] === 'string' && URL.canParse(rest['baseURL'])) {
      if (new URL(rest['baseURL']).host === new URL(OPENAI_BASE_URL).host) {
        issues.push(`${label}: api.openai.com needs a key: set apiKeyEnv (e.g. OPENAI_API_KEY)`);
      }
    }
    // Local OpenAI-compatible servers (Ollama, vLLM, LM Studio) ignore the key, but the SDK needs one.
    return { ...rest, apiKey: UNUSED_KEY };
  });
  return { ...raw, candidates };
}

function syntaxProblem(extension: string, error: unknown): string {
  if (extension === '.json') {
    const text = error instanceof Error ? error.message : '';
    const position = /line \d+ column \d+|position \d+/.exec(text)?.[0];
    return `is not valid JSON${position === undefined ? '' : ` (at ${position})`}`;
  }
  if (error instanceof YAMLParseError) {
    const at = error.linePos?.[0];
    return `is not valid YAML (${error.code}${at === undefined ? '' : ` at line ${at.line} column ${at.col}`})`;
  }
  return 'is not valid YAML';
}

function errorCode(error: unknown): string {
  if (isRecord(error) && typeof error['code'] === 'string') return error['code'];
  return error instanceof Error ? error.name : 'unknown error';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
