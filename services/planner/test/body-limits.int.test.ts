import { ErrorCodes } from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import type { HttpServer } from '@tandem/service-kit';
import { createTestDatabase, createTestToken, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createPlannerHttp } from './helpers/planner-http.js';
import { taskCount } from './helpers/rows.js';

// Hole 7 of issue 11: a 10,000-deep JSON body reached the route's zod schema, whose recursion overflowed
// the stack, and the caller got a 500. Limits are checked on the raw text before anything parses it.

const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), retryable: z.boolean() }),
});

let database: TestDatabase;
let db: Db;
let app: HttpServer;
let baseUrl: string;
let authorization: string;

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 2 });
  authorization = `Bearer ${(await createTestToken(database.url, { role: 'submitter', name: 'deep', agents: ['*'] })).token}`;
  app = createPlannerHttp(db, { prefix: 'test_planner_limits' });
  // A real socket: the body travels over HTTP and through Fastify's own body reading.
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await db?.close();
  await database?.drop();
});

async function post(body: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${baseUrl}/v1/tasks`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) };
}

/** `{"goal":...,"input":{"k":{"k":...}}}` with `depth` objects around the innermost value. */
function taskWithInputDepth(depth: number): string {
  return `{"goal":"a deep input","input":${'{"k":'.repeat(depth)}1${'}'.repeat(depth)}}`;
}

describe('planner HTTP body limits', () => {
  it('answers a 10,000-deep task body with 400 HTTP.BODY_TOO_DEEP and creates no task', async () => {
    const before = await taskCount(db);
    const response = await post(taskWithInputDepth(10_000));
    expect(response.status, JSON.stringify(response.body)).toBe(400);
    const { error } = ErrorBody.parse(response.body);
    expect(error.code).toBe(ErrorCodes.HTTP_BODY_TOO_DEEP);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('32 levels');
    expect(await taskCount(db)).toBe(before);
  });

  it('answers a body over 1 MiB with 413 HTTP.BODY_TOO_LARGE and creates no task', async () => {
    const before = await taskCount(db);
    const response = await post(JSON.stringify({ goal: 'x'.repeat(1024 * 1024) }));
    expect(response.status, JSON.stringify(response.body)).toBe(413);
    expect(ErrorBody.parse(response.body).error.code).toBe(ErrorCodes.HTTP_BODY_TOO_LARGE);
    expect(await taskCount(db)).toBe(before);
  });

  it('accepts a task whose input nests deeply but within the limit, and refuses one level more', async () => {
    // The body's own object is one level, so the input may nest 31 more (32 is the HTTP limit: the
    // input must still fit, 2 levels deeper, in the task.accepted event on the bus).
    const response = await post(taskWithInputDepth(31));
    expect(response.status, JSON.stringify(response.body)).toBe(202);
    expect((await post(taskWithInputDepth(32))).status).toBe(400);
  });
});
