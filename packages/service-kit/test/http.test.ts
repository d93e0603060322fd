import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Counter, Registry } from 'prom-client';
import { z } from 'zod';
import { ErrorCodes, HttpErrorBody, JsonValue, TandemError } from '@tandem/contracts';
import {
  checkJsonBody,
  createHttpServer,
  createLogger,
  type HttpServer,
  type ReadinessCheck,
} from '../src/index.js';

type LogRecord = Record<string, unknown>;

function memoryLog(): { log: ReturnType<typeof createLogger>; records: () => LogRecord[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const records = (): LogRecord[] =>
    chunks
      .join('')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line): LogRecord => {
        const parsed: unknown = JSON.parse(line);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new Error(`not a log object: ${line}`);
        return Object.fromEntries(Object.entries(parsed));
      });
  return { log: createLogger({ service: 'http-test', level: 'info', destination }), records };
}

/** The `error` object of a response body, checked against the shared HTTP error schema. */
function errorBody(payload: string): { code: string; message: string; retryable: boolean; issues?: unknown } {
  const parsed = HttpErrorBody.safeParse(JSON.parse(payload));
  if (!parsed.success) throw new Error(`not an HTTP error body: ${payload}`);
  return parsed.data.error;
}

const servers: HttpServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function server(
  readiness: ReadinessCheck[] = [],
  bodyLimit?: number,
  maxBodyDepth?: number,
): { app: HttpServer; registry: Registry; records: () => LogRecord[] } {
  const registry = new Registry();
  const { log, records } = memoryLog();
  const app = createHttpServer({
    log,
    registry,
    readiness,
    ...(bodyLimit === undefined ? {} : { bodyLimit }),
    ...(maxBodyDepth === undefined ? {} : { maxBodyDepth }),
  });
  servers.push(app);

  app.post(
    '/things',
    { schema: { body: z.object({ name: z.string().min(1), count: z.number().int().positive() }) } },
    async (request) => ({ created: request.body.name, count: request.body.count }),
  );
  app.post(
    '/strict',
    { schema: { body: z.strictObject({ decision: z.enum(['approve', 'reject']) }) } },
    async (request) => ({ decision: request.body.decision }),
  );
  app.post('/inputs', { schema: { body: z.object({ input: JsonValue }) } }, async (request) => ({
    received: typeof request.body.input,
  }));
  app.post(
    '/big-inputs',
    { bodyLimit: 4096, schema: { body: z.object({ input: JsonValue }) } },
    async (request) => ({ received: typeof request.body.input }),
  );
  app.get('/tasks/:id', async (request) => {
    throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `no task ${JSON.stringify(request.params)}`);
  });
  app.post('/approvals/decide', async () => {
    throw new TandemError(ErrorCodes.APPROVAL_ALREADY_DECIDED, 'the approval was already decided');
  });
  app.get('/unprocessable', async () => {
    throw new TandemError(ErrorCodes.PLAN_REJECTED, 'not this way');
  });
  app.get('/busy', async () => {
    throw new TandemError(ErrorCodes.MODEL_RATE_LIMITED, 'try later', { retryable: true });
  });
  app.get('/boom', async () => {
    throw new Error('database password is hunter2 at /srv/app.ts:12');
  });
  return { app, registry, records };
}

describe('createHttpServer health endpoints', () => {
  it('answers /healthz with 200', async () => {
    const { app } = server();
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz with 200 when every check passes', async () => {
    const { app } = server([
      async () => ({ name: 'db', ok: true }),
      async () => ({ name: 'nats', ok: true }),
    ]);
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: 'ready',
      checks: [
        { name: 'db', ok: true },
        { name: 'nats', ok: true },
      ],
    });
  });

  it('answers /readyz with 503 and the detail when a check fails', async () => {
    const { app } = server([
      async () => ({ name: 'db', ok: true }),
      async () => ({ name: 'nats', ok: false, detail: 'disconnected' }),
    ]);
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({
      status: 'not-ready',
      checks: [
        { name: 'db', ok: true },
        { name: 'nats', ok: false, detail: 'disconnected' },
      ],
    });
  });

  it('answers /readyz with 503 when a check throws', async () => {
    const { app } = server([
      async () => ({ name: 'db', ok: true }),
      async () => {
        throw new Error('connection refused');
      },
    ]);
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({
      status: 'not-ready',
      checks: [
        { name: 'db', ok: true },
        { ok: false, detail: 'connection refused' },
      ],
    });
  });

  it('answers /readyz with 200 when there are no checks', async () => {
    const { app } = server();
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('serves the registry in Prometheus text format on /metrics', async () => {
    const { app, registry } = server();
    const counter = new Counter({
      name: 'kit_test_things_total',
      help: 'Things counted in a test',
      labelNames: ['kind'],
      registers: [registry],
    });
    counter.inc({ kind: 'a' }, 3);
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(registry.contentType);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toContain('# HELP kit_test_things_total Things counted in a test');
    expect(response.body).toContain('# TYPE kit_test_things_total counter');
    expect(response.body).toContain('kit_test_things_total{kind="a"} 3');
  });
});

describe('createHttpServer errors', () => {
  it('accepts a valid body', async () => {
    const { app } = server();
    const response = await app.inject({ method: 'POST', url: '/things', payload: { name: 'x', count: 2 } });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ created: 'x', count: 2 });
  });

  it('answers 400 HTTP.BAD_REQUEST with issues for a body that fails its zod schema', async () => {
    const { app } = server();
    const response = await app.inject({ method: 'POST', url: '/things', payload: { name: '', count: 1.5 } });
    expect(response.statusCode).toBe(400);
    const error = errorBody(response.body);
    expect(error.code).toBe(ErrorCodes.HTTP_BAD_REQUEST);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe('invalid body');
    expect(Array.isArray(error.issues)).toBe(true);
    const paths = Array.isArray(error.issues)
      ? error.issues.map((issue: unknown) =>
          typeof issue === 'object' && issue !== null && 'path' in issue ? issue.path : null,
        )
      : [];
    expect(paths).toEqual(expect.arrayContaining(['/name', '/count']));
  });

  it('answers 400 with issues for unknown fields of a strict body', async () => {
    const { app } = server();
    const response = await app.inject({
      method: 'POST',
      url: '/strict',
      payload: { decision: 'approve', force: true },
    });
    expect(response.statusCode).toBe(400);
    const error = errorBody(response.body);
    expect(error.code).toBe(ErrorCodes.HTTP_BAD_REQUEST);
    expect(Array.isArray(error.issues) && error.issues.length).toBeGreaterThan(0);
    expect(JSON.stringify(error.issues)).toContain('force');
  });

  it('answers 400 HTTP.BAD_REQUEST for a body that is not JSON', async () => {
    const { app } = server();
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      payload: '{"name":',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(400);
    expect(errorBody(response.body).code).toBe(ErrorCodes.HTTP_BAD_REQUEST);
  });

  it('answers 413 HTTP.BODY_TOO_LARGE for a body over the limit', async () => {
    const { app } = server([], 64);
    const response = await app.inject({
      method: 'POST',
      url: '/things',
      payload: { name: 'x'.repeat(200), count: 1 },
    });
    expect(response.statusCode).toBe(413);
    expect(errorBody(response.body)).toMatchObject({
      code: ErrorCodes.HTTP_BODY_TOO_LARGE,
      retryable: false,
    });
  });

  it('answers a 10,000-deep JSON body with 400 HTTP.BODY_TOO_DEEP, not 500', async () => {
    const { app, records } = server();
    const response = await app.inject({
      method: 'POST',
      url: '/inputs',
      payload: `{"input":${'['.repeat(10_000)}${']'.repeat(10_000)}}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(400);
    expect(errorBody(response.body)).toMatchObject({ code: ErrorCodes.HTTP_BODY_TOO_DEEP, retryable: false });
    expect(records().some((record) => record['msg'] === 'request failed')).toBe(false);
  });

  it('accepts a body at the depth limit and refuses one level more (maxBodyDepth)', async () => {
    const { app } = server([], undefined, 4);
    const send = (payload: string) =>
      app.inject({
        method: 'POST',
        url: '/inputs',
        payload,
        headers: { 'content-type': 'application/json' },
      });
    expect((await send('{"input":[[["x"]]]}')).statusCode).toBe(200);
    const deeper = await send('{"input":[[[["x"]]]]}');
    expect(deeper.statusCode).toBe(400);
    expect(errorBody(deeper.body).message).toBe('the body nests more than 4 levels deep (at offset 13)');
  });

  it('scans JSON bodies with a charset parameter too, and keeps brackets inside strings out of the count', async () => {
    const { app } = server();
    const deep = await app.inject({
      method: 'POST',
      url: '/inputs',
      payload: `{"input":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}`,
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(deep.statusCode).toBe(400);
    expect(errorBody(deep.body).code).toBe(ErrorCodes.HTTP_BODY_TOO_DEEP);
    const text = await app.inject({
      method: 'POST',
      url: '/inputs',
      payload: { input: `${'['.repeat(10_000)}"\\` },
    });
    expect(text.statusCode).toBe(200);
  });

  it("honours a route's own bodyLimit in the scan", async () => {
    const { app } = server([], 64);
    const payload = { input: 'x'.repeat(1000) };
    expect((await app.inject({ method: 'POST', url: '/inputs', payload })).statusCode).toBe(413);
    expect((await app.inject({ method: 'POST', url: '/big-inputs', payload })).statusCode).toBe(200);
  });

  it("keeps Fastify's refusal of __proto__ and constructor keys and of an empty JSON body", async () => {
    const { app } = server();
    for (const payload of [
      '{"input":{"__proto__":{"admin":true}}}',
      '{"input":{"constructor":{"prototype":{}}}}',
      '',
    ]) {
      const response = await app.inject({
        method: 'POST',
        url: '/inputs',
        payload,
        headers: { 'content-type': 'application/json' },
      });
      expect(response.statusCode, payload).toBe(400);
      expect(errorBody(response.body).code).toBe(ErrorCodes.HTTP_BAD_REQUEST);
    }
  });

  it('maps TASK.NOT_FOUND to 404 with the error shape', async () => {
    const { app } = server();
    const response = await app.inject({ method: 'GET', url: '/tasks/abc' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({
      error: { code: ErrorCodes.TASK_NOT_FOUND, message: 'no task {"id":"abc"}', retryable: false },
    });
  });

  it('maps APPROVAL.ALREADY_DECIDED to 409', async () => {
    const { app } = server();
    const response = await app.inject({ method: 'POST', url: '/approvals/decide' });
    expect(response.statusCode).toBe(409);
    expect(errorBody(response.body)).toEqual({
      code: ErrorCodes.APPROVAL_ALREADY_DECIDED,
      message: 'the approval was already decided',
      retryable: false,
    });
  });

  it('maps other TandemErrors to 422, or 503 when retryable', async () => {
    const { app } = server();
    const unprocessable = await app.inject({ method: 'GET', url: '/unprocessable' });
    expect(unprocessable.statusCode).toBe(422);
    expect(errorBody(unprocessable.body).code).toBe(ErrorCodes.PLAN_REJECTED);
    const busy = await app.inject({ method: 'GET', url: '/busy' });
    expect(busy.statusCode).toBe(503);
    expect(errorBody(busy.body)).toEqual({
      code: ErrorCodes.MODEL_RATE_LIMITED,
      message: 'try later',
      retryable: true,
    });
  });

  it('answers an unexpected error with 500 INTERNAL.ERROR, no message or stack, and logs it', async () => {
    const { app, records } = server();
    const response = await app.inject({ method: 'GET', url: '/boom' });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toEqual({
      error: { code: ErrorCodes.INTERNAL, message: 'internal error', retryable: true },
    });
    expect(response.body).not.toContain('hunter2');
    expect(response.body).not.toContain('stack');
    expect(response.body).not.toContain('.ts:');
    const logged = records().find((record) => record['msg'] === 'request failed');
    expect(logged?.['level']).toBe(50);
    expect(JSON.stringify(logged?.['err'])).toContain('hunter2');
  });

  it('answers an unknown route with 404 HTTP.NOT_FOUND', async () => {
    const { app } = server();
    const response = await app.inject({ method: 'GET', url: '/nowhere?x=1' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({
      error: { code: ErrorCodes.HTTP_NOT_FOUND, message: 'no route GET /nowhere?x=1', retryable: false },
    });
  });

  it('answers a known path with the wrong method with 404 HTTP.NOT_FOUND', async () => {
    const { app } = server();
    const response = await app.inject({ method: 'DELETE', url: '/healthz' });
    expect(response.statusCode).toBe(404);
    expect(errorBody(response.body).code).toBe(ErrorCodes.HTTP_NOT_FOUND);
  });
});

describe('checkJsonBody', () => {
  it('returns null within the limits and the typed error otherwise', () => {
    const limits = { maxBytes: 32, maxDepth: 2 };
    expect(checkJsonBody('{"a":[1]}', limits)).toBeNull();
    expect(checkJsonBody('{"a":[[1]]}', limits)?.toShape()).toEqual({
      code: ErrorCodes.HTTP_BODY_TOO_DEEP,
      message: 'the body nests more than 2 levels deep (at offset 7)',
      retryable: false,
    });
    expect(checkJsonBody(JSON.stringify('x'.repeat(40)), limits)?.code).toBe(ErrorCodes.HTTP_BODY_TOO_LARGE);
  });
});
