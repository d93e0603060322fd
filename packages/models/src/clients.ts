import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
  ChatCompletionToolChoiceOption,
} from 'openai/resources/chat/completions';
import { z } from 'zod';
import { ModelRole } from './config.js';
import type { ModelsConfig, RoleModelConfig } from './config.js';
import { ModelError, ModelErrorCode, toModelError } from './errors.js';

/** A chat message as the openai SDK types it. */
export type ModelMessage = ChatCompletionMessageParam;
/** A tool offered to the model (a function tool with a JSON Schema). */
export type ModelTool = ChatCompletionTool;
/** Which tool the model may or must call. */
export type ModelToolChoice = ChatCompletionToolChoiceOption;

/** One request to a role's model. */
export interface ModelRequest {
  /** Correlates the call record with a task. */
  taskId?: string;
  messages: ModelMessage[];
  tools?: ModelTool[];
  toolChoice?: ModelToolChoice;
  /** Recorded with the call and sent as the `Idempotency-Key` header. */
  idempotencyKey?: string;
  /** Cancels the call (it fails with `MODEL.ABORTED`). */
  signal?: AbortSignal;
}

/** A function call the model asked for; `arguments` is the raw JSON text, to be validated by the caller. */
export const ModelToolCall = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.string(),
});
/** A function call the model asked for; `arguments` is the raw JSON text, to be validated by the caller. */
export type ModelToolCall = z.infer<typeof ModelToolCall>;

/** Token counts of one call (zeros when the endpoint reports none). */
export const ModelUsage = z.object({
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  totalTokens: z.number().int().nonnegative(),
});
/** Token counts of one call (zeros when the endpoint reports none). */
export type ModelUsage = z.infer<typeof ModelUsage>;

/** The validated answer of one model call. */
export const ModelCompletion = z.object({
  content: z.string().nullable(),
  toolCalls: z.array(ModelToolCall),
  usage: ModelUsage,
  /** The model name the endpoint reported (may be more specific than the one asked for). */
  model: z.string(),
  /** Why generation stopped (`stop`, `tool_calls`, `length`, ...), when reported. */
  finishReason: z.string().nullable(),
  latencyMs: z.number().nonnegative(),
});
/** The validated answer of one model call. */
export type ModelCompletion = z.infer<typeof ModelCompletion>;

/** What is recorded for every call, successful or failed; never prompts, never keys. */
export const ModelCallRecord = z.object({
  id: z.uuid(),
  taskId: z.string().nullable(),
  role: ModelRole,
  /** The model asked for. */
  model: z.string(),
  /** Host (and port) of the endpoint only. */
  endpoint: z.string(),
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  totalTokens: z.number().int().nonnegative(),
  /** Wall time of the whole call including SDK retries. */
  latencyMs: z.number().nonnegative(),
  startedAt: z.iso.datetime(),
  outcome: z.enum(['ok', 'error']),
  errorCode: ModelErrorCode.optional(),
  idempotencyKey: z.string().optional(),
});
/** What is recorded for every call, successful or failed; never prompts, never keys. */
export type ModelCallRecord = z.infer<typeof ModelCallRecord>;

/** The model of one role. */
export interface RoleClient {
  readonly role: ModelRole;
  readonly model: string;
  /** Host of the endpoint, safe to log. */
  readonly endpoint: string;
  /** One chat-completions call; throws `ModelError`. */
  complete(request: ModelRequest): Promise<ModelCompletion>;
}

/** One client per role. */
export interface ModelClients {
  planning: RoleClient;
  code: RoleClient;
}

/** Dependencies of `createModelClients`. */
export interface ModelClientsDeps {
  /** Called once per `complete()`, after it succeeded or failed; an exception here propagates to the caller. */
  onCall?: (record: ModelCallRecord) => void;
  /** Clock for `startedAt`; default `() => new Date()`. */
  now?: () => Date;
}

const ResponseToolCall = z.object({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.object({ name: z.string().min(1), arguments: z.string() }),
});

const ResponseUsage = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
  total_tokens: z.number().int().nonnegative(),
});

const ChatCompletionResponse = z.object({
  model: z.string(),
  choices: z
    .array(
      z.object({
        finish_reason: z.string().nullish(),
        message: z.object({
          content: z.string().nullish(),
          tool_calls: z.array(ResponseToolCall).nullish(),
        }),
      }),
    )
    .min(1),
  usage: ResponseUsage.nullish(),
});

/** Creates one openai client per role from parsed config; every call has an explicit timeout and retry count. */
export function createModelClients(config: ModelsConfig, deps: ModelClientsDeps = {}): ModelClients {
  return {
    planning: createRoleClient('planning', config.planning, config, deps),
    code: createRoleClient('code', config.code, config, deps),
  };
}

function createRoleClient(
  role: ModelRole,
  roleConfig: RoleModelConfig,
  config: ModelsConfig,
  deps: ModelClientsDeps,
): RoleClient {
  const baseUrl = new URL(roleConfig.baseURL);
  const endpoint = baseUrl.host;
  const apiKey = roleConfig.apiKey.reveal();
  // Credentials that must never leave in a message: the key and any user info in the base URL.
  const secrets = [apiKey, decodeURIComponent(baseUrl.password), decodeURIComponent(baseUrl.username)].filter(
    (secret) => secret.length >= 4,
  );
  const client = new OpenAI({
    apiKey,
    baseURL: roleConfig.baseURL,
    timeout: config.timeoutMs,
    maxRetries: config.maxRetries,
    // Explicit nulls keep the SDK from reading OPENAI_* variables of the process environment.
    organization: null,
    project: null,
    webhookSecret: null,
    adminAPIKey: null,
    // The SDK's own console logging could print request details; callers log through onCall.
    logLevel: 'off',
  });
  const now = deps.now ?? (() => new Date());

  async function call(request: ModelRequest): Promise<z.infer<typeof ChatCompletionResponse>> {
    let response: unknown;
    try {
      response = await client.chat.completions.create(
        {
          model: roleConfig.model,
          messages: request.messages,
          ...(request.tools === undefined ? {} : { tools: request.tools }),
          ...(request.toolChoice === undefined ? {} : { tool_choice: request.toolChoice }),
          stream: false,
        },
        {
          timeout: config.timeoutMs,
          maxRetries: config.maxRetries,
          ...(request.signal === undefined ? {} : { signal: request.signal }),
          ...(request.idempotencyKey === undefined
            ? {}
            : { headers: { 'Idempotency-Key': request.idempotencyKey } }),
        },
      );
    } catch (error) {
      throw toModelError(error, secrets, `${role} model ${roleConfig.model} at ${endpoint}`);
    }
    const parsed = ChatCompletionResponse.safeParse(response);
    if (!parsed.success) {
      throw new ModelError(
        'MODEL.INVALID_RESPONSE',
        `${role} model ${roleConfig.model} at ${endpoint} answered with an unexpected shape: ${z.prettifyError(parsed.error)}`,
        { retryable: false },
      );
    }
    return parsed.data;
  }

  return {
    role,
    model: roleConfig.model,
    endpoint,
    async complete(request) {
      const startedAt = now();
      const started = performance.now();
      const elapsed = (): number => Math.round((performance.now() - started) * 100) / 100;
      const base = {
        id: randomUUID(),
        taskId: request.taskId ?? null,
        role,
        model: roleConfig.model,
        endpoint,
        startedAt: startedAt.toISOString(),
        ...(request.idempotencyKey === undefined ? {} : { idempotencyKey: request.idempotencyKey }),
      };
      let response: z.infer<typeof ChatCompletionResponse>;
      try {
        response = await call(request);
      } catch (error) {
        const failure = toModelError(error, secrets, `${role} model ${roleConfig.model} at ${endpoint}`);
        deps.onCall?.(
          ModelCallRecord.parse({
            ...base,
            promptTokens: 0,
            completionTokens: 0,
            totalTokens: 0,
            latencyMs: elapsed(),
            outcome: 'error',
            errorCode: failure.code,
          }),
        );
        throw failure;
      }
      const latencyMs = elapsed();
      const choice = response.choices[0];
      const usage: ModelUsage = {
        promptTokens: response.usage?.prompt_tokens ?? 0,
        completionTokens: response.usage?.completion_tokens ?? 0,
        totalTokens: response.usage?.total_tokens ?? 0,
      };
      const completion = ModelCompletion.parse({
        content: choice?.message.content ?? null,
        toolCalls: (choice?.message.tool_calls ?? []).map((toolCall) => ({
          id: toolCall.id,
          name: toolCall.function.name,
          arguments: toolCall.function.arguments,
        })),
        usage,
        model: response.model,
        finishReason: choice?.finish_reason ?? null,
        latencyMs,
      });
      deps.onCall?.(ModelCallRecord.parse({ ...base, ...usage, latencyMs, outcome: 'ok' }));
      return completion;
    },
  };
}
