import type {
  ChatCompletionMessageParam,
  ChatCompletionTool,
  ChatCompletionToolChoiceOption,
} from 'openai/resources/chat/completions';
import { z } from 'zod';
import { ModelRole } from './config.js';
import { ModelErrorCode } from './errors.js';

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

/**
 * What is recorded for every call (every attempt of a selector request), successful or failed;
 * never prompts, never keys.
 */
export const ModelCallRecord = z.object({
  id: z.uuid(),
  taskId: z.string().nullable(),
  role: ModelRole,
  /** The model asked for. */
  model: z.string(),
  /** Host (and port) of the endpoint only. */
  endpoint: z.string(),
  /** The candidate that was called (`<role>:<model>` for clients built from env variables). */
  candidateId: z.string().min(1),
  /** The candidate's tier (`default` unless configured). */
  tier: z.string().min(1),
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  totalTokens: z.number().int().nonnegative(),
  /** USD from the candidate's prices and the reported usage; 0 for failed calls and unpriced models. */
  costUsd: z.number().nonnegative(),
  /** Wall time of the whole call including SDK retries. */
  latencyMs: z.number().nonnegative(),
  startedAt: z.iso.datetime(),
  outcome: z.enum(['ok', 'error']),
  errorCode: ModelErrorCode.optional(),
  /**
   * True when this call went to a candidate other than the request's first choice because an
   * earlier one failed or had its circuit breaker open.
   */
  fallback: z.boolean(),
  /** 1-based number of this call within one selector request (1 for plain role clients). */
  attempt: z.number().int().positive(),
  idempotencyKey: z.string().optional(),
});
/** What is recorded for every call (every attempt of a selector request), successful or failed. */
export type ModelCallRecord = z.infer<typeof ModelCallRecord>;
