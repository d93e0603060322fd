import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import { z } from 'zod';
import type { ModelRole } from './config.js';
import { ModelCompletion } from './completion.js';
import type { ModelRequest, ModelUsage } from './completion.js';
import { ModelError, toModelError } from './errors.js';
import type { Secret } from './secret.js';

/** The request field that caps the answer's length; local servers (Ollama, llama.cpp, LM Studio) know only `max_tokens`. */
export const MaxTokensField = z.enum(['max_completion_tokens', 'max_tokens']);
/** The request field that caps the answer's length. */
export type MaxTokensField = z.infer<typeof MaxTokensField>;

/** One model at one OpenAI-compatible endpoint, with the SDK settings of its calls. */
export interface EndpointTarget {
  model: string;
  baseURL: string;
  apiKey: Secret;
  timeoutMs: number;
  maxRetries: number;
  maxTokensField?: MaxTokensField | undefined;
}

/** The outcome of one call: a validated completion, or the mapped failure and how long it took. */
export type EndpointResult =
  { ok: true; completion: ModelCompletion } | { ok: false; error: ModelError; latencyMs: number };

/** A callable model at one endpoint; `call` never throws, it returns the failure. */
export interface ModelEndpoint {
  readonly model: string;
  /** Host (and port) of the endpoint, safe to log. */
  readonly endpoint: string;
  call(
    role: ModelRole,
    request: ModelRequest,
    options?: { maxOutputTokens?: number },
  ): Promise<EndpointResult>;
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

/** OpenAI and Azure OpenAI reject `max_tokens` for reasoning models; everything else is safest with it. */
export function defaultMaxTokensField(baseURL: string): MaxTokensField {
  const host = new URL(baseURL).hostname;
  return host === 'api.openai.com' || host.endsWith('.openai.azure.com')
    ? 'max_completion_tokens'
    : 'max_tokens';
}

/** Creates the SDK client of one endpoint and model with an explicit timeout and retry count. */
export function createModelEndpoint(target: EndpointTarget): ModelEndpoint {
  const baseUrl = new URL(target.baseURL);
  const endpoint = baseUrl.host;
  const apiKey = target.apiKey.reveal();
  // Credentials that must never leave in a message: the key and any user info in the base URL.
  const secrets = [apiKey, decodeURIComponent(baseUrl.password), decodeURIComponent(baseUrl.username)].filter(
    (secret) => secret.length >= 4,
  );
  const maxTokensField = target.maxTokensField ?? defaultMaxTokensField(target.baseURL);
  const client = new OpenAI({
    apiKey,
    baseURL: target.baseURL,
    timeout: target.timeoutMs,
    maxRetries: target.maxRetries,
    // Explicit nulls keep the SDK from reading OPENAI_* variables of the process environment.
    organization: null,
    project: null,
    webhookSecret: null,
    adminAPIKey: null,
    // The SDK's own console logging could print request details; callers log through onCall.
    logLevel: 'off',
  });

  async function send(
    role: ModelRole,
    request: ModelRequest,
    maxOutputTokens: number | undefined,
  ): Promise<z.infer<typeof ChatCompletionResponse>> {
    const context = `${role} model ${target.model} at ${endpoint}`;
    let response: unknown;
    try {
      response = await client.chat.completions.create(
        {
          model: target.model,
          messages: request.messages,
          ...(request.tools === undefined ? {} : { tools: request.tools }),
          ...(request.toolChoice === undefined ? {} : { tool_choice: request.toolChoice }),
          ...(maxOutputTokens === undefined ? {} : { [maxTokensField]: maxOutputTokens }),
          stream: false,
        },
        {
          timeout: target.timeoutMs,
          maxRetries: target.maxRetries,
          ...(request.signal === undefined ? {} : { signal: request.signal }),
          ...(request.idempotencyKey === undefined
            ? {}
            : { headers: { 'Idempotency-Key': request.idempotencyKey } }),
        },
      );
    } catch (error) {
      throw toModelError(error, secrets, context);
    }
    const parsed = ChatCompletionResponse.safeParse(response);
    if (!parsed.success) {
      throw new ModelError(
        'MODEL.INVALID_RESPONSE',
        `${context} answered with an unexpected shape: ${z.prettifyError(parsed.error)}`,
        { retryable: false },
      );
    }
    return parsed.data;
  }

  return {
    model: target.model,
    endpoint,
    async call(role, request, options = {}) {
      const started = performance.now();
      const elapsed = (): number => Math.round((performance.now() - started) * 100) / 100;
      let response: z.infer<typeof ChatCompletionResponse>;
      try {
        response = await send(role, request, options.maxOutputTokens);
      } catch (error) {
        return {
          ok: false,
          error: toModelError(error, secrets, `${role} model ${target.model} at ${endpoint}`),
          latencyMs: elapsed(),
        };
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
      return { ok: true, completion };
    },
  };
}
