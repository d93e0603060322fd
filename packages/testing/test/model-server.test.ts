import OpenAI from 'openai';
import type { ChatCompletionTool } from 'openai/resources/chat/completions';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createScriptedModelServer } from '../src/index.js';
import type { ModelScript, ScriptedModelServer, ScriptedReply } from '../src/index.js';

const tools: ChatCompletionTool[] = [
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

const StreamChunk = z.object({
  object: z.literal('chat.completion.chunk'),
  choices: z.array(z.object({ delta: z.object({ content: z.string().nullish() }) })),
});

let server: ScriptedModelServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(
  script: ModelScript | ScriptedReply[],
): Promise<{ server: ScriptedModelServer; client: OpenAI }> {
  server = await createScriptedModelServer(script);
  const client = new OpenAI({ baseURL: server.url, apiKey: 'sk-test-secret', timeout: 5000, maxRetries: 0 });
  return { server, client };
}

describe('scripted model server', () => {
  it('serves a scripted tool call to the non-streaming SDK call', async () => {
    const { client } = await start([
      { toolCalls: [{ id: 'call_1', name: 'run_code', arguments: { language: 'js', code: '1+1' } }] },
    ]);
    const completion = await client.chat.completions.create({
      model: 'planner-x',
      messages: [{ role: 'user', content: 'add numbers' }],
      tools,
    });
    const choice = completion.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.tool_calls).toEqual([
      {
        id: 'call_1',
        type: 'function',
        function: { name: 'run_code', arguments: '{"language":"js","code":"1+1"}' },
      },
    ]);
    expect(completion.model).toBe('planner-x');
  });

  it('answers content replies in queue order and reports plausible usage', async () => {
    const { client } = await start([{ content: 'first' }, { content: 'second answer' }]);
    const first = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'a' }],
    });
    const second = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'b' }],
    });
    expect(first.choices[0]?.message.content).toBe('first');
    expect(second.choices[0]?.message.content).toBe('second answer');
    expect(second.choices[0]?.finish_reason).toBe('stop');
    const usage = second.usage;
    expect(usage?.completion_tokens).toBe(Math.ceil('second answer'.length / 4));
    expect(usage?.prompt_tokens).toBeGreaterThan(0);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
  });

  it('reports usage given by the script', async () => {
    const { client } = await start([{ content: 'x', usage: { promptTokens: 100, completionTokens: 7 } }]);
    const completion = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'a' }],
    });
    expect(completion.usage).toMatchObject({ prompt_tokens: 100, completion_tokens: 7, total_tokens: 107 });
  });

  it('streams tool-call deltas that the SDK stream helper reassembles, with usage last', async () => {
    const { server, client } = await start({
      replies: [
        {
          toolCalls: [
            {
              id: 'call_a',
              name: 'run_code',
              arguments: { language: 'python', code: 'print("hello, world")' },
            },
            { id: 'call_b', name: 'run_code', arguments: { language: 'js', code: 'console.log(2)' } },
          ],
        },
      ],
      streamChunkSize: 5,
    });
    const stream = client.chat.completions.stream({
      model: 'm',
      messages: [{ role: 'user', content: 'print twice' }],
      tools,
      stream_options: { include_usage: true },
    });
    const argumentDeltas: string[] = [];
    stream.on('tool_calls.function.arguments.delta', (event) => argumentDeltas.push(event.arguments_delta));
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    stream.on('chunk', (chunk) => chunks.push(chunk));
    const completion = await stream.finalChatCompletion();

    const calls = completion.choices[0]?.message.tool_calls ?? [];
    expect(calls.map((call) => (call.type === 'function' ? [call.id, call.function.name] : []))).toEqual([
      ['call_a', 'run_code'],
      ['call_b', 'run_code'],
    ]);
    const firstCall = calls[0];
    expect(firstCall?.type === 'function' ? JSON.parse(firstCall.function.arguments) : undefined).toEqual({
      language: 'python',
      code: 'print("hello, world")',
    });
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    // Arguments really arrived in pieces, and usage came in a last chunk without choices.
    expect(argumentDeltas.length).toBeGreaterThan(4);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.total_tokens).toBeGreaterThan(0);
    expect(completion.usage?.completion_tokens).toBe(last?.usage?.completion_tokens);
    expect(server.requests[0]?.body?.stream).toBe(true);
  });

  it('streams content deltas with raw SSE framing ending in [DONE]', async () => {
    const { server } = await start([{ content: 'héllo wörld, streamed' }]);
    const response = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text();
    const events = text.split('\n\n').filter((line) => line !== '');
    expect(events.at(-1)).toBe('data: [DONE]');
    const contents = events
      .slice(0, -1)
      .map((event) => StreamChunk.parse(JSON.parse(event.replace(/^data: /, ''))))
      .map((chunk) => chunk.choices[0]?.delta.content ?? '')
      .join('');
    expect(contents).toBe('héllo wörld, streamed');
    // Without include_usage no chunk carries usage.
    expect(text).not.toContain('"usage"');
  });

  it('passes malformed tool arguments through verbatim', async () => {
    const { client } = await start([
      { toolCalls: [{ name: 'run_code', arguments: '{"language": "js", code' }] },
    ]);
    const completion = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'go' }],
      tools,
    });
    const call = completion.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' ? call.function.arguments : undefined).toBe('{"language": "js", code');
    expect(call?.id).toBe('call_0_0');
  });

  it('answers a scripted 429 with an OpenAI error body and retry-after', async () => {
    const { client } = await start([
      { status: 429, error: 'Rate limit reached for requests', retryAfter: 3 },
    ]);
    const error = await client.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: 'a' }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    if (!(error instanceof OpenAI.RateLimitError)) return;
    expect(error.status).toBe(429);
    expect(error.code).toBe('rate_limit_exceeded');
    expect(error.message).toContain('Rate limit reached for requests');
    expect(error.headers.get('retry-after')).toBe('3');
  });

  it('answers a scripted 500 as an InternalServerError', async () => {
    const { client } = await start([{ status: 500, error: { message: 'boom', type: 'server_error' } }]);
    const error = await client.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: 'a' }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error instanceof OpenAI.APIError ? error.type : undefined).toBe('server_error');
  });

  it('delays a reply so that a client timeout fires', async () => {
    const { server } = await start([{ delayMs: 2000, content: 'late' }]);
    const client = new OpenAI({ baseURL: server.url, apiKey: 'test', timeout: 150, maxRetries: 0 });
    const started = Date.now();
    const error = await client.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: 'a' }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('answers a delay-only reply with an empty message after the delay', async () => {
    const { client } = await start([{ delayMs: 120 }]);
    const started = Date.now();
    const completion = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'a' }],
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(completion.choices[0]?.message.content).toBe('');
  });

  it('asks the matcher first and falls back to the queue', async () => {
    const { client } = await start({
      match: (request) => {
        const last = request.body.messages.at(-1);
        return last?.role === 'tool' ? { content: 'done after tool' } : undefined;
      },
      replies: [
        { toolCalls: [{ id: 'call_9', name: 'run_code', arguments: { language: 'js', code: '1' } }] },
      ],
    });
    const first = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'go' }],
      tools,
    });
    expect(first.choices[0]?.finish_reason).toBe('tool_calls');
    const second = await client.chat.completions.create({
      model: 'm',
      tools,
      messages: [
        { role: 'user', content: 'go' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_9', type: 'function', function: { name: 'run_code', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'call_9', content: '1' },
      ],
    });
    expect(second.choices[0]?.message.content).toBe('done after tool');
  });

  it('answers an unmatched request with a 500 naming what was asked', async () => {
    const { server, client } = await start([]);
    const error = await client.chat.completions
      .create({ model: 'planner-x', messages: [{ role: 'user', content: 'plan the migration' }], tools })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    const message = error instanceof Error ? error.message : '';
    expect(message).toContain('no reply for request #0');
    expect(message).toContain('planner-x');
    expect(message).toContain('plan the migration');
    expect(message).toContain('run_code');
    expect(server.requests[0]?.status).toBe(500);
  });

  it('rejects garbage bodies with a clear 400', async () => {
    const { server } = await start([{ content: 'never used' }]);
    const notJson = await fetch(`${server.url}/chat/completions`, { method: 'POST', body: '{nope' });
    expect(notJson.status).toBe(400);
    expect(JSON.stringify(await notJson.json())).toContain('not valid JSON');

    const noMessages = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [] }),
    });
    expect(noMessages.status).toBe(400);
    const body: unknown = await noMessages.json();
    expect(body).toMatchObject({ error: { type: 'invalid_request_error', param: 'messages' } });
    expect(server.remaining()).toBe(1);
  });

  it('records requests with their bodies and without the API key', async () => {
    const { server, client } = await start([{ content: 'ok' }]);
    await client.chat.completions.create(
      {
        model: 'm',
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'hi' },
        ],
        tools,
      },
      { headers: { 'Idempotency-Key': 'task-1-step-2' } },
    );
    const recorded = server.requests[0];
    expect(recorded?.path).toBe('/v1/chat/completions');
    expect(recorded?.body?.messages.map((message) => message.role)).toEqual(['system', 'user']);
    expect(recorded?.body?.tools?.[0]?.function.name).toBe('run_code');
    expect(recorded?.hasAuthorization).toBe(true);
    expect(recorded?.headers['authorization']).toBe('Bearer [redacted]');
    expect(recorded?.headers['idempotency-key']).toBe('task-1-step-2');
    expect(JSON.stringify(server.requests)).not.toContain('sk-test-secret');
  });

  it('answers 401 when a required API key is missing or wrong', async () => {
    const { server } = await start({ apiKey: 'sk-right', replies: [{ content: 'for the right key' }] });
    const wrong = new OpenAI({ baseURL: server.url, apiKey: 'sk-wrong', timeout: 5000, maxRetries: 0 });
    await expect(
      wrong.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'a' }] }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const right = new OpenAI({ baseURL: server.url, apiKey: 'sk-right', timeout: 5000, maxRetries: 0 });
    const completion = await right.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'a' }],
    });
    expect(completion.choices[0]?.message.content).toBe('for the right key');
    expect(server.requests.map((request) => request.status)).toEqual([401, 200]);
    expect(JSON.stringify(server.requests)).not.toMatch(/sk-right|sk-wrong/);
  });

  it('lists models', async () => {
    const { client } = await start({ models: ['planner-x', 'coder-y'] });
    const page = await client.models.list();
    expect(page.data.map((model) => model.id)).toEqual(['planner-x', 'coder-y']);
  });

  it('can be closed while a delayed reply is pending', async () => {
    const { server, client } = await start([{ delayMs: 30_000, content: 'never' }]);
    const pending = client.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: 'a' }] })
      .catch((caught: unknown) => caught);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await pending).toBeInstanceOf(OpenAI.APIConnectionError);
  });
});
