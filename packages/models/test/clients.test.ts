import { inspect } from 'node:util';
import { createScriptedModelServer } from '@tandem/testing';
import type { ModelScript, ScriptedModelServer, ScriptedReply } from '@tandem/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createModelClients, ModelError, modelsConfigFromEnv } from '../src/index.js';
import type { ModelCallRecord, ModelClients, ModelTool } from '../src/index.js';

const KEY = 'sk-live-very-secret-key-1234567890';

const tools: ModelTool[] = [
  {
    type: 'function',
    function: {
      name: 'run_code',
      description: 'Run code in the sandbox',
      strict: true,
      parameters: {
        type: 'object',
        properties: { language: { type: 'string' }, code: { type: 'string' } },
        required: ['language', 'code'],
        additionalProperties: false,
      },
    },
  },
];

const servers: ScriptedModelServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(script: ModelScript | ScriptedReply[]): Promise<ScriptedModelServer> {
  const server = await createScriptedModelServer(script);
  servers.push(server);
  return server;
}

function clientsFor(
  server: ScriptedModelServer,
  extra: Record<string, string> = {},
): { clients: ModelClients; records: ModelCallRecord[] } {
  const records: ModelCallRecord[] = [];
  const config = modelsConfigFromEnv({
    OPENAI_BASE_URL: server.url,
    OPENAI_API_KEY: KEY,
    TANDEM_PLANNING_MODEL: 'thinker-1',
    TANDEM_CODE_MODEL: 'coder-1',
    TANDEM_MODEL_TIMEOUT_MS: '5000',
    TANDEM_MODEL_MAX_RETRIES: '0',
    ...extra,
  });
  return { clients: createModelClients(config, { onCall: (record) => records.push(record) }), records };
}

async function failure(promise: Promise<unknown>): Promise<ModelError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof ModelError)) throw new Error(`expected a ModelError, got ${inspect(error)}`);
  return error;
}

describe('role clients', () => {
  it('returns tool calls and records usage and latency', async () => {
    const server = await serve([
      {
        delayMs: 60,
        toolCalls: [{ id: 'call_7', name: 'run_code', arguments: { language: 'js', code: '6*7' } }],
        usage: { promptTokens: 120, completionTokens: 30 },
      },
    ]);
    const { clients, records } = clientsFor(server);
    const result = await clients.planning.complete({
      taskId: 'task-1',
      idempotencyKey: 'task-1:plan:1',
      messages: [
        { role: 'system', content: 'You plan tasks as function calls.' },
        { role: 'user', content: 'compute 6*7' },
      ],
      tools,
      toolChoice: 'required',
    });
    expect(result.toolCalls).toEqual([
      { id: 'call_7', name: 'run_code', arguments: '{"language":"js","code":"6*7"}' },
    ]);
    expect(result.content).toBeNull();
    expect(result.finishReason).toBe('tool_calls');
    expect(result.usage).toEqual({ promptTokens: 120, completionTokens: 30, totalTokens: 150 });
    expect(result.model).toBe('thinker-1');
    expect(result.latencyMs).toBeGreaterThanOrEqual(50);

    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      taskId: 'task-1',
      role: 'planning',
      model: 'thinker-1',
      endpoint: new URL(server.url).host,
      promptTokens: 120,
      completionTokens: 30,
      totalTokens: 150,
      outcome: 'ok',
      idempotencyKey: 'task-1:plan:1',
      candidateId: 'planning:thinker-1',
      tier: 'default',
      costUsd: 0,
      fallback: false,
      attempt: 1,
    });
    expect(records[0]?.latencyMs).toBeGreaterThanOrEqual(50);
    expect(records[0]?.errorCode).toBeUndefined();

    const sent = server.requests[0];
    expect(sent?.body?.model).toBe('thinker-1');
    expect(sent?.body?.tools?.map((tool) => tool.function.name)).toEqual(['run_code']);
    expect(sent?.body?.tool_choice).toBe('required');
    expect(sent?.body?.stream).toBe(false);
    expect(sent?.headers['idempotency-key']).toBe('task-1:plan:1');
  });

  it('returns content and the code model for the code role', async () => {
    const server = await serve({
      match: (request) => (request.body.model === 'coder-1' ? { content: 'console.log(42)' } : undefined),
    });
    const { clients, records } = clientsFor(server);
    const result = await clients.code.complete({ messages: [{ role: 'user', content: 'print 42' }] });
    expect(result.content).toBe('console.log(42)');
    expect(result.toolCalls).toEqual([]);
    expect(result.usage.totalTokens).toBe(result.usage.promptTokens + result.usage.completionTokens);
    expect(records[0]).toMatchObject({ role: 'code', model: 'coder-1', taskId: null, outcome: 'ok' });
    expect(records[0]?.idempotencyKey).toBeUndefined();
  });

  it('passes malformed tool arguments through for the caller to reject', async () => {
    const server = await serve([{ toolCalls: [{ name: 'run_code', arguments: '{"language":' }] }]);
    const { clients } = clientsFor(server);
    const result = await clients.planning.complete({ messages: [{ role: 'user', content: 'go' }], tools });
    expect(result.toolCalls[0]?.arguments).toBe('{"language":');
  });

  it('maps 429 to MODEL.RATE_LIMITED, retryable, with the server-given wait', async () => {
    const server = await serve([{ status: 429, error: 'Rate limit reached', retryAfter: 7 }]);
    const { clients, records } = clientsFor(server);
    const error = await failure(
      clients.planning.complete({ taskId: 't', messages: [{ role: 'user', content: 'a' }] }),
    );
    expect(error.code).toBe('MODEL.RATE_LIMITED');
    expect(error.retryable).toBe(true);
    expect(error.status).toBe(429);
    expect(error.retryAfterMs).toBe(7000);
    expect(error.message).toContain('Rate limit reached');
    expect(error.toJSON()).toEqual({
      code: 'MODEL.RATE_LIMITED',
      message: error.message,
      retryable: true,
      details: { status: 429, retryAfterMs: 7000 },
    });
    expect(records).toEqual([
      expect.objectContaining({
        outcome: 'error',
        errorCode: 'MODEL.RATE_LIMITED',
        totalTokens: 0,
        taskId: 't',
      }),
    ]);
  });

  it('maps 400 to MODEL.BAD_REQUEST, not retryable', async () => {
    const server = await serve([
      { status: 400, error: { message: "Invalid schema for function 'run_code'", param: 'tools' } },
    ]);
    const { clients, records } = clientsFor(server);
    const error = await failure(
      clients.planning.complete({ messages: [{ role: 'user', content: 'a' }], tools }),
    );
    expect(error.code).toBe('MODEL.BAD_REQUEST');
    expect(error.retryable).toBe(false);
    expect(records[0]?.errorCode).toBe('MODEL.BAD_REQUEST');
  });

  it('maps 500 and 503 to MODEL.SERVER_ERROR, retryable', async () => {
    const server = await serve([
      { status: 500, error: 'boom' },
      { status: 503, error: 'overloaded' },
    ]);
    const { clients } = clientsFor(server);
    for (const expected of ['boom', 'overloaded']) {
      const error = await failure(clients.code.complete({ messages: [{ role: 'user', content: 'a' }] }));
      expect(error.code).toBe('MODEL.SERVER_ERROR');
      expect(error.retryable).toBe(true);
      expect(error.message).toContain(expected);
    }
  });

  it('maps a slow server to MODEL.TIMEOUT, retryable, after the configured timeout', async () => {
    const server = await serve([{ delayMs: 5000, content: 'too late' }]);
    const { clients, records } = clientsFor(server, { TANDEM_MODEL_TIMEOUT_MS: '200' });
    const started = Date.now();
    const error = await failure(clients.planning.complete({ messages: [{ role: 'user', content: 'a' }] }));
    expect(error.code).toBe('MODEL.TIMEOUT');
    expect(error.retryable).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(records[0]).toMatchObject({ outcome: 'error', errorCode: 'MODEL.TIMEOUT' });
    expect(records[0]?.latencyMs).toBeGreaterThanOrEqual(190);
  });

  it('maps an unreachable endpoint to MODEL.CONNECTION, retryable', async () => {
    const server = await serve([]);
    const url = server.url;
    await server.close();
    const { clients } = clientsFor({ ...server, url });
    const error = await failure(clients.planning.complete({ messages: [{ role: 'user', content: 'a' }] }));
    expect(error.code).toBe('MODEL.CONNECTION');
    expect(error.retryable).toBe(true);
  });

  it('maps a caller abort to MODEL.ABORTED, not retryable', async () => {
    const server = await serve([{ delayMs: 5000, content: 'late' }]);
    const { clients } = clientsFor(server);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await failure(
      clients.planning.complete({ messages: [{ role: 'user', content: 'a' }], signal: controller.signal }),
    );
    expect(error.code).toBe('MODEL.ABORTED');
    expect(error.retryable).toBe(false);
  });

  it('maps a response without choices to MODEL.INVALID_RESPONSE', async () => {
    // A raw server: the scripted one only answers well-formed completions.
    const { createServer } = await import('node:http');
    const raw = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ id: 'x', object: 'chat.completion', model: 'thinker-1', choices: [] }));
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', () => resolve()));
    try {
      const address = raw.address();
      const port = address !== null && typeof address === 'object' ? address.port : 0;
      const { clients, records } = clientsFor({ ...(await serve([])), url: `http://127.0.0.1:${port}/v1` });
      const error = await failure(clients.planning.complete({ messages: [{ role: 'user', content: 'a' }] }));
      expect(error.code).toBe('MODEL.INVALID_RESPONSE');
      expect(error.retryable).toBe(false);
      expect(error.message).toContain('choices');
      expect(records[0]?.errorCode).toBe('MODEL.INVALID_RESPONSE');
    } finally {
      raw.closeAllConnections();
      await new Promise<void>((resolve) => raw.close(() => resolve()));
    }
  });

  it('retries as configured (maxRetries is passed explicitly)', async () => {
    const server = await serve([
      { status: 500, error: 'transient', headers: { 'retry-after-ms': '10' } },
      { content: 'second time lucky' },
    ]);
    const { clients, records } = clientsFor(server, { TANDEM_MODEL_MAX_RETRIES: '1' });
    const result = await clients.planning.complete({ messages: [{ role: 'user', content: 'a' }] });
    expect(result.content).toBe('second time lucky');
    expect(server.requests.map((request) => request.status)).toEqual([500, 200]);
    expect(records).toHaveLength(1);
  });

  it('sends each role to its own base URL and key when overridden', async () => {
    const shared = await serve({ apiKey: KEY, replies: [{ content: 'from shared' }] });
    const codeServer = await serve({
      apiKey: 'code-only-key-42',
      replies: [{ content: 'from code server' }],
    });
    const { clients, records } = clientsFor(shared, {
      TANDEM_CODE_BASE_URL: codeServer.url,
      TANDEM_CODE_API_KEY: 'code-only-key-42',
    });
    expect((await clients.planning.complete({ messages: [{ role: 'user', content: 'plan' }] })).content).toBe(
      'from shared',
    );
    expect((await clients.code.complete({ messages: [{ role: 'user', content: 'code' }] })).content).toBe(
      'from code server',
    );
    expect(shared.requests.map((request) => request.body?.model)).toEqual(['thinker-1']);
    expect(codeServer.requests.map((request) => request.body?.model)).toEqual(['coder-1']);
    expect(codeServer.requests[0]?.status).toBe(200);
    expect(clients.code.endpoint).toBe(new URL(codeServer.url).host);
    expect(records.map((record) => [record.role, record.endpoint])).toEqual([
      ['planning', new URL(shared.url).host],
      ['code', new URL(codeServer.url).host],
    ]);
  });

  it('maps a rejected key to MODEL.UNAUTHORIZED', async () => {
    const server = await serve({ apiKey: 'the-right-key', replies: [{ content: 'never' }] });
    const { clients } = clientsFor(server);
    const error = await failure(clients.planning.complete({ messages: [{ role: 'user', content: 'a' }] }));
    expect(error.code).toBe('MODEL.UNAUTHORIZED');
    expect(error.retryable).toBe(false);
  });

  it('never lets the key reach records, messages or causes, even when the server echoes it', async () => {
    const server = await serve([
      { status: 401, error: `Incorrect API key provided: ${KEY}` },
      { status: 500, error: `upstream rejected Bearer ${KEY}` },
      { content: 'fine' },
    ]);
    const { clients, records } = clientsFor(server);
    const errors: ModelError[] = [];
    errors.push(await failure(clients.planning.complete({ messages: [{ role: 'user', content: 'a' }] })));
    errors.push(await failure(clients.code.complete({ messages: [{ role: 'user', content: 'b' }] })));
    await clients.planning.complete({ messages: [{ role: 'user', content: 'c' }] });

    expect(records).toHaveLength(3);
    expect(JSON.stringify(records)).not.toContain(KEY);
    for (const error of errors) {
      expect(error.message).toContain('[redacted]');
      expect(error.message).not.toContain(KEY);
      expect(JSON.stringify(error)).not.toContain(KEY);
      expect(inspect(error, { depth: 10 })).not.toContain(KEY);
    }
    expect(inspect(clients, { depth: 10 })).not.toContain(KEY);
    expect(JSON.stringify(server.requests)).not.toContain(KEY);
    expect(server.requests.every((request) => request.hasAuthorization)).toBe(true);
  });
});
