import type { ChatCompletionRequest } from './request-schema.js';

/** Token counts a scripted reply reports; missing ones are estimated (about 4 characters a token). */
export interface ScriptedUsage {
  promptTokens?: number;
  completionTokens?: number;
  totalTokens?: number;
}

interface ScriptedReplyBase {
  /** Wait this long before answering (the client may time out first). */
  delayMs?: number;
  /** Override the estimated usage. */
  usage?: ScriptedUsage;
  /** Model name to report; defaults to the requested model. */
  model?: string;
}

/** A plain assistant message. */
export interface ScriptedContentReply extends ScriptedReplyBase {
  content: string;
  finishReason?: 'stop' | 'length' | 'content_filter';
}

/** One function call the scripted model makes. */
export interface ScriptedToolCall {
  /** Defaults to `call_<request index>_<call index>`. */
  id?: string;
  name: string;
  /** An object is JSON-encoded; a string is sent verbatim, so malformed JSON can be scripted. */
  arguments: string | Record<string, unknown> | readonly unknown[];
}

/** An assistant message that calls functions (finish_reason `tool_calls`). */
export interface ScriptedToolCallsReply extends ScriptedReplyBase {
  toolCalls: readonly ScriptedToolCall[];
  content?: string | null;
}

/** An HTTP error with an OpenAI-shaped body: `{ error: { message, type, param, code } }`. */
export interface ScriptedErrorReply {
  status: number;
  error: string | { message: string; type?: string; code?: string | null; param?: string | null };
  /** Sent as the `retry-after` header (seconds). */
  retryAfter?: number | string;
  /** Extra response headers. */
  headers?: Record<string, string>;
  delayMs?: number;
}

/** Only slowness: after `delayMs`, an empty assistant message. */
export interface ScriptedDelayReply {
  delayMs: number;
}

/** What the scripted model answers to one chat-completions request. */
export type ScriptedReply =
  ScriptedContentReply | ScriptedToolCallsReply | ScriptedErrorReply | ScriptedDelayReply;

/** One HTTP request the scripted server received; secrets in auth headers are replaced by `[redacted]`. */
export interface RecordedRequest {
  /** 0-based arrival order over all requests to this server. */
  index: number;
  method: string;
  /** Path without the query string, e.g. `/v1/chat/completions`. */
  path: string;
  /** Lower-cased header names; `authorization` and `api-key` keep only their scheme. */
  headers: Record<string, string>;
  /** Whether an `Authorization` header was sent at all. */
  hasAuthorization: boolean;
  /** The validated chat-completions body; undefined for other routes and for rejected bodies. */
  body: ChatCompletionRequest | undefined;
  /** The body exactly as received (empty for GET). */
  rawBody: string;
  /** The HTTP status answered; undefined while the reply is pending or when the client went away first. */
  status: number | undefined;
}

/** A recorded chat-completions request whose body passed validation: what a matcher receives. */
export interface ChatRequestRecord extends RecordedRequest {
  body: ChatCompletionRequest;
}

/** Chooses a reply for a request; return undefined to fall through to the queue. */
export type ScriptMatcher = (request: ChatRequestRecord) => ScriptedReply | undefined;

/** The per-test script: the matcher is asked first, then the queue is consumed in order. */
export interface ModelScript {
  replies?: readonly ScriptedReply[];
  match?: ScriptMatcher;
  /** Ids listed by `GET /v1/models`; default `['scripted-model']`. */
  models?: readonly string[];
  /** Characters of content or arguments per streamed delta; default 8. */
  streamChunkSize?: number;
  /** Pause between streamed chunks; default 0. */
  streamChunkDelayMs?: number;
  /** When set, chat requests without `Authorization: Bearer <apiKey>` get OpenAI's 401 (the key is never recorded). */
  apiKey?: string;
}
