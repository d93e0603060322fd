import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { ChatCompletionRequest } from './request-schema.js';
import type {
  ChatRequestRecord,
  ModelScript,
  RecordedRequest,
  ScriptedErrorReply,
  ScriptedReply,
  ScriptedToolCall,
  ScriptedUsage,
} from './script.js';

/** A running scripted OpenAI-compatible server. */
export interface ScriptedModelServer {
  /** Base URL ending in `/v1`, ready for `new OpenAI({ baseURL })`. */
  url: string;
  /** Every request received, in order (live array). */
  requests: RecordedRequest[];
  /** Append replies to the queue. */
  enqueue(...replies: ScriptedReply[]): void;
  /** How many queued replies have not been used yet. */
  remaining(): number;
  /** Stop listening, cut open connections and cancel pending delays. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;

interface ErrorBody {
  status: number;
  message: string;
  type: string;
  code: string | null;
  param: string | null;
}

interface CompletionParts {
  content: string | null;
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  finishReason: 'stop' | 'length' | 'content_filter' | 'tool_calls';
  model: string;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/**
 * Starts a real HTTP server on 127.0.0.1 (random port) that answers the OpenAI chat-completions API
 * from a script. Pass an array as shorthand for `{ replies }`.
 */
export async function createScriptedModelServer(
  script: ModelScript | readonly ScriptedReply[] = {},
): Promise<ScriptedModelServer> {
  const options: ModelScript = isReplyList(script) ? { replies: script } : script;
  const queue: ScriptedReply[] = [...(options.replies ?? [])];
  const models = options.models ?? ['scripted-model'];
  const chunkSize = Math.max(1, options.streamChunkSize ?? 8);
  const chunkDelayMs = options.streamChunkDelayMs ?? 0;
  const requests: RecordedRequest[] = [];
  const lifetime = new AbortController();
  let completionCount = 0;

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent && !response.destroyed) {
        sendError(response, {
          status: 500,
          message: `scripted model server crashed: ${describeError(error)}`,
          type: 'scripted_server_error',
          code: 'internal',
          param: null,
        });
      } else {
        response.destroy();
      }
    });
  });
  // Keep-alive sockets of the SDK must not keep close() waiting.
  server.keepAliveTimeout = 1000;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const rawBody = await readBody(request);
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const record: RecordedRequest = {
      index: requests.length,
      method: request.method ?? 'GET',
      path,
      headers: redactHeaders(request),
      hasAuthorization: request.headers.authorization !== undefined,
      body: undefined,
      rawBody: rawBody ?? '',
      status: undefined,
    };
    requests.push(record);
    const answer = (status: number): void => {
      record.status = status;
    };

    if (rawBody === undefined) {
      answer(413);
      sendError(response, invalid(413, `request body exceeds ${MAX_BODY_BYTES} bytes`));
      return;
    }
    if (record.method === 'GET' && (path === '/v1/models' || path === '/models')) {
      answer(200);
      sendJson(response, 200, {
        object: 'list',
        data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'tandem-testing' })),
      });
      return;
    }
    const modelMatch = /^\/(?:v1\/)?models\/([^/]+)$/.exec(path);
    if (record.method === 'GET' && modelMatch?.[1] !== undefined) {
      const id = decodeURIComponent(modelMatch[1]);
      if (models.includes(id)) {
        answer(200);
        sendJson(response, 200, { id, object: 'model', created: 0, owned_by: 'tandem-testing' });
      } else {
        answer(404);
        sendError(response, {
          status: 404,
          message: `The model '${id}' does not exist (scripted models: ${models.join(', ')})`,
          type: 'invalid_request_error',
          code: 'model_not_found',
          param: null,
        });
      }
      return;
    }
    if (path !== '/v1/chat/completions' && path !== '/chat/completions') {
      answer(404);
      sendError(response, {
        status: 404,
        message: `scripted model server does not serve ${record.method} ${path} (it serves POST /v1/chat/completions and GET /v1/models)`,
        type: 'invalid_request_error',
        code: 'unknown_url',
        param: null,
      });
      return;
    }
    if (record.method !== 'POST') {
      answer(405);
      sendError(response, invalid(405, `${record.method} ${path} is not allowed; use POST`));
      return;
    }

    if (options.apiKey !== undefined && request.headers.authorization !== `Bearer ${options.apiKey}`) {
      answer(401);
      sendError(response, {
        status: 401,
        message: 'Incorrect API key provided.',
        type: 'invalid_request_error',
        code: 'invalid_api_key',
        param: null,
      });
      return;
    }

    let json: unknown;
    try {
      json = JSON.parse(rawBody);
    } catch (error) {
      answer(400);
      sendError(response, invalid(400, `request body is not valid JSON: ${describeError(error)}`));
      return;
    }
    const parsed = ChatCompletionRequest.safeParse(json);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      answer(400);
      sendError(response, {
        ...invalid(400, `invalid chat-completions request: ${z.prettifyError(parsed.error)}`),
        param: first === undefined || first.path.length === 0 ? null : first.path.join('.'),
      });
      return;
    }
    const chatRecord: ChatRequestRecord = { ...record, body: parsed.data };
    record.body = parsed.data;

    let reply: ScriptedReply | undefined;
    try {
      reply = options.match?.(chatRecord) ?? queue.shift();
    } catch (error) {
      answer(500);
      sendError(response, {
        status: 500,
        message: `scripted model server: the script's matcher threw on request #${record.index}: ${describeError(error)}`,
        type: 'scripted_server_error',
        code: 'matcher_threw',
        param: null,
      });
      return;
    }
    if (reply === undefined) {
      answer(500);
      sendError(response, {
        status: 500,
        message: describeUnmatched(chatRecord),
        type: 'scripted_server_error',
        code: 'unmatched_request',
        param: null,
      });
      return;
    }

    const clientGone = new AbortController();
    response.on('close', () => clientGone.abort());
    const signal = AbortSignal.any([clientGone.signal, lifetime.signal]);
    if (reply.delayMs !== undefined && reply.delayMs > 0) {
      const waited = await sleep(reply.delayMs, true, { signal }).catch(() => false);
      if (!waited) {
        response.destroy();
        return;
      }
    }

    if ('status' in reply) {
      answer(reply.status);
      sendScriptedError(response, reply);
      return;
    }
    completionCount += 1;
    const parts = completionParts(reply, parsed.data, record.index);
    const id = `chatcmpl-scripted-${completionCount}`;
    const created = Math.floor(Date.now() / 1000);
    if (parsed.data.stream === true) {
      answer(200);
      const includeUsage = parsed.data.stream_options?.include_usage === true;
      await streamCompletion(response, { id, created, parts, includeUsage, chunkSize, chunkDelayMs, signal });
      return;
    }
    answer(200);
    sendJson(
      response,
      200,
      {
        id,
        object: 'chat.completion',
        created,
        model: parts.model,
        system_fingerprint: 'fp_scripted',
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: parts.content,
              refusal: null,
              ...(parts.toolCalls.length > 0
                ? {
                    tool_calls: parts.toolCalls.map((call) => ({
                      id: call.id,
                      type: 'function',
                      function: { name: call.name, arguments: call.arguments },
                    })),
                  }
                : {}),
            },
            logprobs: null,
            finish_reason: parts.finishReason,
          },
        ],
        usage: parts.usage,
      },
      { 'x-request-id': `req_scripted_${record.index}` },
    );
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') {
    server.close();
    throw new Error('scripted model server did not get a TCP address');
  }
  const { port } = address satisfies AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    enqueue: (...replies) => {
      queue.push(...replies);
    },
    remaining: () => queue.length,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        lifetime.abort();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function isReplyList(script: ModelScript | readonly ScriptedReply[]): script is readonly ScriptedReply[] {
  return Array.isArray(script);
}

async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function redactHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(', ') : value;
    if (name === 'authorization') {
      const scheme = text.split(' ')[0] ?? '';
      headers[name] = text.includes(' ') ? `${scheme} [redacted]` : '[redacted]';
    } else if (name === 'api-key' || name === 'x-api-key') {
      headers[name] = '[redacted]';
    } else {
      headers[name] = text;
    }
  }
  return headers;
}

function completionParts(
  reply: Exclude<ScriptedReply, ScriptedErrorReply>,
  request: ChatCompletionRequest,
  requestIndex: number,
): CompletionParts {
  const toolCalls =
    'toolCalls' in reply
      ? reply.toolCalls.map((call: ScriptedToolCall, index) => ({
          id: call.id ?? `call_${requestIndex}_${index}`,
          name: call.name,
          arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
        }))
      : [];
  let content: string | null;
  if ('toolCalls' in reply) content = reply.content ?? null;
  else if ('content' in reply) content = reply.content;
  else content = '';
  let finishReason: CompletionParts['finishReason'] = 'stop';
  if (toolCalls.length > 0) finishReason = 'tool_calls';
  else if ('finishReason' in reply && reply.finishReason !== undefined) finishReason = reply.finishReason;
  const completionText = (content ?? '') + toolCalls.map((call) => call.name + call.arguments).join('');
  const given: ScriptedUsage = 'usage' in reply ? (reply.usage ?? {}) : {};
  const promptTokens =
    given.promptTokens ??
    estimateTokens(JSON.stringify({ messages: request.messages, tools: request.tools ?? [] }));
  const completionTokens = given.completionTokens ?? estimateTokens(completionText);
  return {
    content,
    toolCalls,
    finishReason,
    model: ('model' in reply ? reply.model : undefined) ?? request.model,
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: given.totalTokens ?? promptTokens + completionTokens,
    },
  };
}

/** About four characters a token, at least one: plausible, deterministic, cheap. */
function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

async function streamCompletion(
  response: ServerResponse,
  stream: {
    id: string;
    created: number;
    parts: CompletionParts;
    includeUsage: boolean;
    chunkSize: number;
    chunkDelayMs: number;
    signal: AbortSignal;
  },
): Promise<void> {
  const { id, created, parts, includeUsage, chunkSize, chunkDelayMs, signal } = stream;
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-request-id': `req_${id}`,
  });
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model: parts.model,
    system_fingerprint: 'fp_scripted',
    choices,
    ...(includeUsage ? { usage: null } : {}),
    ...extra,
  });
  const delta = (
    value: Record<string, unknown>,
    finishReason: string | null = null,
  ): Record<string, unknown> =>
    chunk([{ index: 0, delta: value, logprobs: null, finish_reason: finishReason }]);

  const events: Array<Record<string, unknown>> = [];
  events.push(delta({ role: 'assistant', content: parts.toolCalls.length > 0 ? null : '', refusal: null }));
  for (const piece of split(parts.content ?? '', chunkSize)) events.push(delta({ content: piece }));
  parts.toolCalls.forEach((call, index) => {
    events.push(
      delta({
        tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }],
      }),
    );
    for (const piece of split(call.arguments, chunkSize)) {
      events.push(delta({ tool_calls: [{ index, function: { arguments: piece } }] }));
    }
  });
  events.push(delta({}, parts.finishReason));
  if (includeUsage) events.push(chunk([], { usage: parts.usage }));

  for (const event of events) {
    if (signal.aborted || response.destroyed) return;
    response.write(`data: ${JSON.stringify(event)}\n\n`);
    if (chunkDelayMs > 0) {
      const waited = await sleep(chunkDelayMs, true, { signal }).catch(() => false);
      if (!waited) {
        response.destroy();
        return;
      }
    }
  }
  response.end('data: [DONE]\n\n');
}

function split(text: string, size: number): string[] {
  const characters = Array.from(text);
  const pieces: string[] = [];
  for (let start = 0; start < characters.length; start += size) {
    pieces.push(characters.slice(start, start + size).join(''));
  }
  return pieces;
}

function sendScriptedError(response: ServerResponse, reply: ScriptedErrorReply): void {
  const detail = typeof reply.error === 'string' ? { message: reply.error } : reply.error;
  const headers: Record<string, string> = { ...(reply.headers ?? {}) };
  if (reply.retryAfter !== undefined) headers['retry-after'] = String(reply.retryAfter);
  sendError(
    response,
    {
      status: reply.status,
      message: detail.message,
      type: detail.type ?? defaultErrorType(reply.status),
      code: detail.code === undefined ? defaultErrorCode(reply.status) : detail.code,
      param: detail.param ?? null,
    },
    headers,
  );
}

function defaultErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'requests';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

function defaultErrorCode(status: number): string | null {
  if (status === 401) return 'invalid_api_key';
  if (status === 429) return 'rate_limit_exceeded';
  return null;
}

function invalid(status: number, message: string): ErrorBody {
  return { status, message, type: 'invalid_request_error', code: null, param: null };
}

function sendError(response: ServerResponse, error: ErrorBody, headers: Record<string, string> = {}): void {
  const { status, ...detail } = error;
  sendJson(response, status, { error: detail }, headers);
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

function describeUnmatched(request: ChatRequestRecord): string {
  const { body } = request;
  const last = body.messages.at(-1);
  const lastText =
    last === undefined
      ? ''
      : typeof last.content === 'string'
        ? last.content
        : JSON.stringify(last.content ?? last.tool_calls ?? null);
  const shown = lastText.length > 200 ? `${lastText.slice(0, 200)}...` : lastText;
  const tools = (body.tools ?? []).map((tool) => tool.function.name);
  return (
    `scripted model server has no reply for request #${request.index}: model "${body.model}", ` +
    `${body.messages.length} message(s), last ${last?.role ?? 'none'} message ${JSON.stringify(shown)}, ` +
    `tools [${tools.join(', ')}], stream ${body.stream === true}. ` +
    `The queue is empty and the matcher returned nothing: add a reply to the script.`
  );
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
