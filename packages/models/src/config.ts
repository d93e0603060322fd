import { z } from 'zod';
import { Secret } from './secret.js';

/** The two model roles: the thinking model that plans, and the model that writes code. */
export const ModelRole = z.enum(['planning', 'code']);
/** The two model roles: the thinking model that plans, and the model that writes code. */
export type ModelRole = z.infer<typeof ModelRole>;

/** api.openai.com, used when only a key is given. */
export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

/** An http(s) URL. */
export const HttpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** A `Secret`, or a non-empty string that becomes one. */
export const SecretInput = z.union([
  z.instanceof(Secret),
  z
    .string()
    .min(1)
    .transform((value) => new Secret(value)),
]);

/** Where one role's model lives; `apiKey` is a `Secret` after parsing (a string is accepted as input). */
export const RoleModelConfig = z.object({
  model: z.string().min(1),
  baseURL: HttpUrl,
  apiKey: SecretInput,
});
/** Where one role's model lives; `apiKey` is a `Secret` after parsing (a string is accepted as input). */
export type RoleModelConfig = z.infer<typeof RoleModelConfig>;

/** Parsed model configuration: one endpoint per role plus the per-call timeout and retry count. */
export const ModelsConfig = z.object({
  planning: RoleModelConfig,
  code: RoleModelConfig,
  timeoutMs: z.number().int().positive().default(60_000),
  maxRetries: z.number().int().min(0).max(10).default(2),
});
/** Parsed model configuration: one endpoint per role plus the per-call timeout and retry count. */
export type ModelsConfig = z.infer<typeof ModelsConfig>;

/** The environment variables the models package reads (empty strings count as unset). */
export const ModelsEnv = z.object({
  OPENAI_BASE_URL: HttpUrl.optional(),
  OPENAI_API_KEY: z.string().min(1).optional(),
  TANDEM_PLANNING_MODEL: z.string().min(1).optional(),
  TANDEM_CODE_MODEL: z.string().min(1).optional(),
  TANDEM_PLANNING_BASE_URL: HttpUrl.optional(),
  TANDEM_PLANNING_API_KEY: z.string().min(1).optional(),
  TANDEM_CODE_BASE_URL: HttpUrl.optional(),
  TANDEM_CODE_API_KEY: z.string().min(1).optional(),
  TANDEM_MODEL_TIMEOUT_MS: z.coerce.number().int().positive().default(60_000),
  TANDEM_MODEL_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
});
/** The environment variables the models package reads (empty strings count as unset). */
export type ModelsEnv = z.infer<typeof ModelsEnv>;

/** Thrown by `modelsConfigFromEnv` with every problem found, so they can be printed together. */
export class ModelsConfigError extends Error {
  override readonly name = 'ModelsConfigError';
  readonly issues: readonly string[];

  constructor(issues: readonly string[]) {
    super(`invalid model configuration:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`);
    this.issues = issues;
  }
}

const SETTING_KEYS = [
  'TANDEM_MODELS_FILE',
  'TANDEM_PLANNING_FALLBACK_MODELS',
  'TANDEM_CODE_FALLBACK_MODELS',
  'OPENAI_BASE_URL',
  'OPENAI_API_KEY',
  'TANDEM_PLANNING_MODEL',
  'TANDEM_CODE_MODEL',
  'TANDEM_PLANNING_BASE_URL',
  'TANDEM_PLANNING_API_KEY',
  'TANDEM_CODE_BASE_URL',
  'TANDEM_CODE_API_KEY',
] as const;

/**
 * Whether the environment asks for a real model: true as soon as a models file, any endpoint, key or
 * model name is set, so a half-done configuration fails loudly in `modelsConfigFromEnv` instead of silently
 * falling back to the launcher's demo model.
 */
export function isModelEndpointConfigured(env: Record<string, string | undefined>): boolean {
  return SETTING_KEYS.some((key) => nonEmpty(env[key]) !== undefined);
}

/**
 * Parses model settings from an env-like record: per-role `TANDEM_<ROLE>_BASE_URL` / `_API_KEY`
 * override `OPENAI_BASE_URL` / `OPENAI_API_KEY`; a key without a base URL means api.openai.com.
 * Throws `ModelsConfigError` listing every problem. Secrets never appear in the messages.
 */
export function modelsConfigFromEnv(env: Record<string, string | undefined>): ModelsConfig {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(ModelsEnv.shape)) {
    const value = nonEmpty(env[key]);
    if (value !== undefined) cleaned[key] = value;
  }
  const parsed = ModelsEnv.safeParse(cleaned);
  if (!parsed.success) {
    // zod issues carry no input values here, so keys cannot leak through them.
    throw new ModelsConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(env)'}: ${issue.message}`),
    );
  }
  const values = parsed.data;
  const issues: string[] = [];
  const role = (name: ModelRole): z.input<typeof RoleModelConfig> | undefined => {
    const upper = name === 'planning' ? 'PLANNING' : 'CODE';
    const roleBaseUrl = name === 'planning' ? values.TANDEM_PLANNING_BASE_URL : values.TANDEM_CODE_BASE_URL;
    const roleKey = name === 'planning' ? values.TANDEM_PLANNING_API_KEY : values.TANDEM_CODE_API_KEY;
    const model = name === 'planning' ? values.TANDEM_PLANNING_MODEL : values.TANDEM_CODE_MODEL;
    const apiKey = roleKey ?? values.OPENAI_API_KEY;
    const baseURL =
      roleBaseUrl ?? values.OPENAI_BASE_URL ?? (apiKey === undefined ? undefined : OPENAI_BASE_URL);
    if (baseURL === undefined) {
      issues.push(
        `the ${name} model has no endpoint: set OPENAI_BASE_URL or TANDEM_${upper}_BASE_URL (or OPENAI_API_KEY for api.openai.com)`,
      );
      return undefined;
    }
    if (model === undefined) {
      issues.push(
        `TANDEM_${upper}_MODEL is required: the model name the ${name} role calls at ${new URL(baseURL).host}`,
      );
    }
    if (apiKey === undefined && new URL(baseURL).host === 'api.openai.com') {
      issues.push(`an API key is required for api.openai.com: set OPENAI_API_KEY or TANDEM_${upper}_API_KEY`);
    }
    // Local OpenAI-compatible servers (Ollama, vLLM, LM Studio) ignore the key, but the SDK needs one.
    return model === undefined ? undefined : { model, baseURL, apiKey: apiKey ?? 'unused' };
  };
  const planning = role('planning');
  const code = role('code');
  if (issues.length > 0 || planning === undefined || code === undefined) throw new ModelsConfigError(issues);
  return ModelsConfig.parse({
    planning,
    code,
    timeoutMs: values.TANDEM_MODEL_TIMEOUT_MS,
    maxRetries: values.TANDEM_MODEL_MAX_RETRIES,
  });
}

/** The trimmed value, or undefined when unset or blank. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
