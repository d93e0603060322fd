import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDb, migrate, transaction, type Db } from '@tandem/db';
import { createLogger } from '@tandem/service-kit';
import { createTestDatabase, getFreePort, waitFor, type TestDatabase } from '@tandem/testing';
import { generateWebhookSecret, verifyWebhook } from '@tandem/webhooks';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createDeliveryLoop,
  deliveriesFor,
  RETRY_SCHEDULE_MS,
  storeDeliveries,
  webhookIdFor,
  type DeliveryLoop,
  type DeliveryLoopDeps,
  type DeliveryResult,
  type WebhookEndpoint,
} from '../src/webhooks/delivery.js';
import { claimWebhookId, pruneReceivedWebhooks } from '../src/webhooks/received.js';

/** A request as the receiver saw it. */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** How the receiver answers: a status (and optionally headers), possibly after a wait. */
type Responder = (request: Received, index: number) => number | Promise<number>;

const log = createLogger({ service: 'approval-webhook-test', level: process.env['LOG_LEVEL'] ?? 'silent' });

let database: TestDatabase;
let db: Db;
let server: Server;
let baseUrl: string;
let received: Received[] = [];
let respond: Responder = () => 204;
let loops: DeliveryLoop[] = [];
let extraDbs: Db[] = [];

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 4 });
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const entry = {
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(entry);
      void Promise.resolve(respond(entry, received.length - 1)).then((status) => {
        const headers = status >= 300 && status < 400 ? { location: '/elsewhere' } : {};
        response.writeHead(status, headers).end(status >= 400 ? `receiver says no (${status})` : '');
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the receiver has no TCP address');
  baseUrl = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await db?.close();
  await database?.drop();
});

beforeEach(async () => {
  received = [];
  respond = () => 204;
  await db.kysely.deleteFrom('WebhookDelivery').execute();
});

afterEach(async () => {
  await Promise.all(loops.map((loop) => loop.stop()));
  loops = [];
  await Promise.all(extraDbs.map((extra) => extra.close()));
  extraDbs = [];
});

function endpoint(overrides: Partial<WebhookEndpoint> = {}): WebhookEndpoint {
  return {
    name: 'pager',
    url: `${baseUrl}/hooks/${randomUUID()}`,
    groups: ['oncall'],
    secrets: [generateWebhookSecret()],
    ...overrides,
  };
}

function payloadFor(approvalId: string) {
  return {
    type: 'approval.requested',
    timestamp: new Date().toISOString(),
    data: { approvalId, tool: 'run_code', note: 'ünïcode ✓', escalationLevel: 0 },
  };
}

/** Queues one notification for the endpoints, as the approval service does in its transaction. */
async function queue(endpoints: readonly WebhookEndpoint[], approvalId: string = randomUUID()) {
  const rows = deliveriesFor({
    endpoints,
    group: null,
    type: 'approval.requested',
    approvalId,
    discriminator: 'requested',
    payload: payloadFor(approvalId),
    now: new Date(),
  });
  await transaction(db, (tx) => storeDeliveries(tx, rows));
  return rows;
}

function startLoop(deps: Partial<DeliveryLoopDeps> & Pick<DeliveryLoopDeps, 'endpoints'>): DeliveryLoop {
  const loop = createDeliveryLoop({ db, log, intervalMs: 20, timeoutMs: 2000, ...deps });
  loops.push(loop);
  return loop;
}

/** A stored delivery row. */
type WebhookDelivery = Awaited<ReturnType<typeof row>>;

function row(id: string) {
  return db.kysely.selectFrom('WebhookDelivery').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

/** Makes a queued delivery due now (time passed). */
async function makeDue(id: string): Promise<void> {
  await db.kysely
    .updateTable('WebhookDelivery')
    .set({ nextAttemptAt: new Date(Date.now() - 1000) })
    .where('id', '=', id)
    .execute();
}

async function waitForRow(
  id: string,
  description: string,
  done: (delivery: WebhookDelivery) => boolean,
): Promise<WebhookDelivery> {
  return waitFor(
    async () => {
      const current = await row(id);
      return done(current) ? current : undefined;
    },
    { description, timeoutMs: 10_000 },
  );
}

/** A gate the receiver waits on, to hold a request open. */
function gate(): { wait: Promise<void>; open(): void } {
  let open = (): void => undefined;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

function only<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  const [item] = items;
  if (item === undefined) throw new Error('expected one item');
  return item;
}

describe('deliveriesFor', () => {
  const oncall = endpoint({ name: 'oncall', groups: ['oncall'] });
  const security = endpoint({ name: 'security', groups: ['security', 'oncall'] });
  const everyone = endpoint({ name: 'everyone', groups: [] });
  const input = {
    endpoints: [oncall, security, everyone],
    type: 'approval.escalated' as const,
    approvalId: randomUUID(),
    discriminator: 'escalated:1',
    payload: { type: 'approval.escalated', data: { at: new Date(0), skipped: undefined } },
    now: new Date(),
  };

  it('queues one pending row per endpoint serving the group, all endpoints for no group', () => {
    const forSecurity = deliveriesFor({ ...input, group: 'security' });
    expect(forSecurity.map((delivery) => delivery.endpoint)).toEqual(['security', 'everyone']);
    expect(deliveriesFor({ ...input, group: null }).map((delivery) => delivery.endpoint)).toEqual([
      'oncall',
      'security',
      'everyone',
    ]);
    const first = forSecurity[0];
    expect(first).toMatchObject({
      url: security.url,
      event: 'approval.escalated',
      status: 'pending',
      attempts: 0,
      nextAttemptAt: input.now,
      approvalId: input.approvalId,
      // Stored as the JSON that is sent: dates as strings, undefined dropped.
      payload: { type: 'approval.escalated', data: { at: '1970-01-01T00:00:00.000Z' } },
    });
  });

  it('derives one webhook id per notification, the same when the event is handled again', () => {
    const once = deliveriesFor({ ...input, group: null });
    const again = deliveriesFor({ ...input, group: null });
    const ids = new Set([...once, ...again].map((delivery) => delivery.webhookId));
    expect(ids).toEqual(new Set([webhookIdFor(input.approvalId, input.type, input.discriminator)]));
    expect(webhookIdFor(input.approvalId, input.type, 'escalated:2')).not.toBe(once[0]?.webhookId);
    expect(webhookIdFor(input.approvalId, 'approval.expired', 'escalated:1')).not.toBe(once[0]?.webhookId);
    expect(once[0]?.webhookId).toMatch(/^msg_[0-9a-f]{32}$/);
  });

  it('queues a redelivered notification once (rows conflict on webhookId and url)', async () => {
    const first = await transaction(db, (tx) =>
      storeDeliveries(tx, deliveriesFor({ ...input, group: null })),
    );
    const second = await transaction(db, (tx) =>
      storeDeliveries(tx, deliveriesFor({ ...input, group: null })),
    );
    expect([first, second]).toEqual([3, 0]);
  });

  it('refuses a payload that is not JSON', () => {
    expect(() => deliveriesFor({ ...input, group: null, payload: { big: 1n } })).toThrow(TypeError);
    expect(() => deliveriesFor({ ...input, group: null, payload: null })).toThrow(TypeError);
  });

  it('has a retry schedule that grows and gives up after hours', () => {
    expect(RETRY_SCHEDULE_MS.length).toBeGreaterThanOrEqual(5);
    expect([...RETRY_SCHEDULE_MS].sort((a, b) => a - b)).toEqual(RETRY_SCHEDULE_MS);
  });
});

describe('delivery loop', () => {
  it('POSTs the payload signed so that the receiver verifies it, and marks it delivered', async () => {
    const target = endpoint();
    const results: DeliveryResult[] = [];
    const [queued] = await queue([target]);
    if (queued === undefined) throw new Error('nothing queued');
    startLoop({ endpoints: [target], onResult: (result) => results.push(result) });

    const delivered = await waitForRow(
      queued.id,
      'the delivery to be delivered',
      (current) => current.status === 'delivered',
    );
    const request = only(received);
    expect(request.path).toBe(new URL(target.url).pathname);
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['webhook-id']).toBe(queued.webhookId);
    expect(JSON.parse(request.body)).toEqual(queued.payload);
    expect(
      verifyWebhook({ headers: request.headers, body: request.body, secrets: target.secrets }),
    ).toMatchObject({
      ok: true,
      id: queued.webhookId,
    });
    expect(
      verifyWebhook({ headers: request.headers, body: `${request.body} `, secrets: target.secrets }).ok,
    ).toBe(false);
    expect(delivered).toMatchObject({ attempts: 1, lastStatus: 204, lastError: null, nextAttemptAt: null });
    expect(results).toEqual(['delivered']);
  });

  it('retries a 500 with the same webhook-id after the scheduled wait, then delivers', async () => {
    const target = endpoint();
    const [queued] = await queue([target]);
    if (queued === undefined) throw new Error('nothing queued');
    respond = (_request, index) => (index === 0 ? 500 : 200);
    const loop = startLoop({ endpoints: [target], retryScheduleMs: [60_000] });

    const failedOnce = await waitForRow(queued.id, 'the first attempt', (current) => current.attempts === 1);
    const waited = (failedOnce.nextAttemptAt?.getTime() ?? 0) - failedOnce.updatedAt.getTime();
    expect(failedOnce).toMatchObject({
      status: 'pending',
      lastStatus: 500,
      lastError: 'HTTP 500: receiver says no (500)',
    });
    // 60 s ± 10% jitter (updatedAt is the database's clock; allow a second of skew).
    expect(waited).toBeGreaterThan(53_000);
    expect(waited).toBeLessThan(67_000);
    await sleep(100);
    expect(received).toHaveLength(1);

    // Time passes: the retry is due.
    await makeDue(queued.id);
    loop.kick();
    const delivered = await waitForRow(
      queued.id,
      'the retry to be delivered',
      (current) => current.status === 'delivered',
    );
    expect(delivered).toMatchObject({ attempts: 2, lastStatus: 200, lastError: null, nextAttemptAt: null });
    expect(received.map((request) => request.headers['webhook-id'])).toEqual([
      queued.webhookId,
      queued.webhookId,
    ]);
    for (const request of received) {
      expect(
        verifyWebhook({ headers: request.headers, body: request.body, secrets: target.secrets }).ok,
      ).toBe(true);
    }
  });

  it('fails a delivery at once on 410 Gone', async () => {
    const target = endpoint();
    const [queued] = await queue([target]);
    if (queued === undefined) throw new Error('nothing queued');
    respond = () => 410;
    const results: DeliveryResult[] = [];
    startLoop({ endpoints: [target], retryScheduleMs: [10, 10], onResult: (result) => results.push(result) });

    const failed = await waitForRow(
      queued.id,
      'the delivery to fail',
      (current) => current.status === 'failed',
    );
    expect(failed).toMatchObject({ attempts: 1, lastStatus: 410, nextAttemptAt: null });
    await sleep(100);
    expect(received).toHaveLength(1);
    expect(results).toEqual(['failed']);
  });

  it('retries an unreachable receiver and keeps the URL out of the error', async () => {
    const port = await getFreePort();
    const target = endpoint({ url: `http://127.0.0.1:${port}/hook?token=do-not-store` });
    const [queued] = await queue([target]);
    if (queued === undefined) throw new Error('nothing queued');
    const loop = startLoop({ endpoints: [target], retryScheduleMs: [60_000, 60_000] });

    const first = await waitForRow(queued.id, 'the first attempt', (current) => current.attempts === 1);
    expect(first).toMatchObject({ status: 'pending', lastStatus: null });
    expect(first.lastError).toMatch(/ECONNREFUSED/);
    expect(first.lastError).not.toContain('do-not-store');
    expect(first.nextAttemptAt?.getTime()).toBeGreaterThan(Date.now() + 30_000);

    await makeDue(queued.id);
    loop.kick();
    const second = await waitForRow(queued.id, 'the second attempt', (current) => current.attempts === 2);
    expect(second.status).toBe('pending');
  });

  it('fails a delivery once the retry schedule is exhausted', async () => {
    const target = endpoint();
    const [queued] = await queue([target]);
    if (queued === undefined) throw new Error('nothing queued');
    respond = () => 503;
    const results: DeliveryResult[] = [];
    startLoop({ endpoints: [target], retryScheduleMs: [10, 10], onResult: (result) => results.push(result) });

    const failed = await waitForRow(
      queued.id,
      'the delivery to fail',
      (current) => current.status === 'failed',
    );
    expect(failed).toMatchObject({ attempts: 3, lastStatus: 503, nextAttemptAt: null });
    expect(results).toEqual(['retry', 'retry', 'failed']);
    expect(new Set(received.map((request) => request.headers['webhook-id']))).toEqual(
      new Set([queued.webhookId]),
    );
    await sleep(100);
    expect(received).toHaveLength(3);
  });

  it('does not follow a redirect and counts it as a failed attempt', async () => {
    const target = endpoint();
    const [queued] = await queue([target]);
    if (queued === undefined) throw new Error('nothing queued');
    respond = () => 302;
    startLoop({ endpoints: [target], retryScheduleMs: [60_000] });

    const attempted = await waitForRow(queued.id, 'the first attempt', (current) => current.attempts === 1);
    expect(attempted).toMatchObject({ status: 'pending', lastStatus: 302 });
    await sleep(100);
    expect(received.map((request) => request.path)).toEqual([new URL(target.url).pathname]);
  });

  it('gives up on a request after the timeout and retries it', async () => {
    const target = endpoint();
    const [queued] = await queue([target]);
    if (queued === undefined) throw new Error('nothing queued');
    const held = gate();
    respond = async () => {
      await held.wait;
      return 200;
    };
    startLoop({ endpoints: [target], timeoutMs: 150, retryScheduleMs: [60_000] });
    try {
      const attempted = await waitForRow(
        queued.id,
        'the timed-out attempt',
        (current) => current.attempts === 1,
      );
      expect(attempted).toMatchObject({ status: 'pending', lastStatus: null });
      expect(attempted.lastError).toMatch(/timeout|aborted/i);
    } finally {
      held.open();
    }
  });

  it('signs with every secret of a rotation, and a retired secret stops verifying', async () => {
    const oldSecret = generateWebhookSecret();
    const newSecret = generateWebhookSecret();
    let configured = endpoint({ secrets: [oldSecret, newSecret] });
    const loop = startLoop({ endpoints: () => [configured] });
    const [first] = await queue([configured]);
    if (first === undefined) throw new Error('nothing queued');
    loop.kick();
    await waitForRow(first.id, 'the first delivery', (current) => current.status === 'delivered');

    const during = only(received);
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    const verifies = (request: Received, secrets: string[]) =>
      verifyWebhook({ headers: request.headers, body: request.body, secrets }).ok;
    expect(verifies(during, [oldSecret])).toBe(true);
    expect(verifies(during, [newSecret])).toBe(true);
    expect(verifies(during, [generateWebhookSecret()])).toBe(false);

    // The rotation ends: only the new secret is configured; the next delivery uses it alone.
    configured = { ...configured, secrets: [newSecret] };
    received = [];
    const [second] = await queue([configured]);
    if (second === undefined) throw new Error('nothing queued');
    loop.kick();
    await waitForRow(second.id, 'the second delivery', (current) => current.status === 'delivered');
    const after = only(received);
    expect(String(after.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(verifies(after, [newSecret])).toBe(true);
    expect(verifies(after, [oldSecret])).toBe(false);
  });

  it('fails deliveries of an endpoint removed from the configuration without sending them', async () => {
    const removed = endpoint({ name: 'removed' });
    const [queued] = await queue([removed]);
    if (queued === undefined) throw new Error('nothing queued');
    startLoop({ endpoints: [endpoint({ name: 'other' })] });

    const failed = await waitForRow(
      queued.id,
      'the delivery to fail',
      (current) => current.status === 'failed',
    );
    expect(failed).toMatchObject({
      attempts: 0,
      lastStatus: null,
      lastError: 'endpoint removed is no longer configured',
    });
    expect(received).toHaveLength(0);
  });

  it('never sends an attempt twice when a second loop polls while the first is sending', async () => {
    const target = endpoint();
    const [queued] = await queue([target]);
    if (queued === undefined) throw new Error('nothing queued');
    const held = gate();
    respond = async () => {
      await held.wait;
      return 200;
    };
    startLoop({ endpoints: [target] });
    await waitFor(() => received.length === 1, { description: 'the first loop to send' });

    const otherDb = createDb({ url: database.url, poolMax: 2 });
    extraDbs.push(otherDb);
    const other = createDeliveryLoop({ db: otherDb, endpoints: [target], log, intervalMs: 10 });
    loops.push(other);
    for (let round = 0; round < 5; round += 1) {
      other.kick();
      await sleep(40);
    }
    expect(received).toHaveLength(1);

    held.open();
    await waitForRow(queued.id, 'the delivery to be delivered', (current) => current.status === 'delivered');
    await sleep(100);
    expect(received).toHaveLength(1);
    expect((await row(queued.id)).attempts).toBe(1);
  });

  it('shares due rows between two loops on one database, each attempt sent once', async () => {
    const target = endpoint();
    const queued = (await Promise.all(Array.from({ length: 24 }, () => queue([target])))).flat();
    respond = async () => {
      await sleep(20);
      return 200;
    };
    const counts = { first: 0, second: 0 };
    const otherDb = createDb({ url: database.url, poolMax: 2 });
    extraDbs.push(otherDb);
    startLoop({ endpoints: [target], intervalMs: 5, batch: 3, onResult: () => void (counts.first += 1) });
    loops.push(
      createDeliveryLoop({
        db: otherDb,
        endpoints: [target],
        log,
        intervalMs: 5,
        batch: 3,
        onResult: () => void (counts.second += 1),
      }),
    );

    await waitFor(
      async () =>
        (
          await db.kysely
            .selectFrom('WebhookDelivery')
            .select('id')
            .where('status', '=', 'delivered')
            .execute()
        ).length === queued.length,
      { description: 'every delivery to be delivered', timeoutMs: 15_000 },
    );
    const ids = received.map((request) => request.headers['webhook-id']);
    expect(ids).toHaveLength(queued.length);
    expect(new Set(ids).size).toBe(queued.length);
    expect(counts.first).toBeGreaterThan(0);
    expect(counts.second).toBeGreaterThan(0);
    const attempts = await db.kysely.selectFrom('WebhookDelivery').select('attempts').execute();
    expect(attempts.every((delivery) => delivery.attempts === 1)).toBe(true);
  });

  it('stop() waits for the round in flight, which records its result', async () => {
    const target = endpoint();
    const [queued] = await queue([target]);
    if (queued === undefined) throw new Error('nothing queued');
    const held = gate();
    respond = async () => {
      await held.wait;
      return 200;
    };
    const loop = startLoop({ endpoints: [target] });
    await waitFor(() => received.length === 1, { description: 'the request to be sent' });
    let stopped = false;
    const stopping = loop.stop().then(() => {
      stopped = true;
    });
    await sleep(100);
    expect(stopped).toBe(false);
    held.open();
    await stopping;
    expect((await row(queued.id)).status).toBe('delivered');
  });

  it('logs a failing round and goes on with the next', async () => {
    const target = endpoint();
    const brokenDb = createDb({ url: database.url, poolMax: 1 });
    extraDbs.push(brokenDb);
    await brokenDb.close();
    const errors: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        errors.push(chunk.toString('utf8'));
        callback();
      },
    });
    const recording = createLogger({ service: 'approval-webhook-test', level: 'error', destination });
    const loop = createDeliveryLoop({ db: brokenDb, endpoints: [target], log: recording, intervalMs: 10 });
    loops.push(loop);
    await waitFor(() => errors.length >= 2, { description: 'two failed rounds to be logged' });
    expect(errors[0]).toMatch(/round failed/);
  });
});

describe('received webhook ids', () => {
  it('claims an id once; a replay is refused, a rolled-back claim is not', async () => {
    const id = `msg_${randomUUID()}`;
    expect(await transaction(db, (tx) => claimWebhookId(tx, id))).toBe(true);
    expect(await transaction(db, (tx) => claimWebhookId(tx, id))).toBe(false);
    expect(await transaction(db, (tx) => claimWebhookId(tx, id))).toBe(false);

    const rolledBack = `msg_${randomUUID()}`;
    await expect(
      transaction(db, async (tx) => {
        expect(await claimWebhookId(tx, rolledBack)).toBe(true);
        throw new Error('the decision failed');
      }),
    ).rejects.toThrow('the decision failed');
    expect(await transaction(db, (tx) => claimWebhookId(tx, rolledBack))).toBe(true);

    const stored = await db.kysely
      .selectFrom('ReceivedWebhook')
      .selectAll()
      .where('webhookId', '=', id)
      .executeTakeFirstOrThrow();
    expect(Math.abs(stored.receivedAt.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('prunes ids older than the given time', async () => {
    const old = `msg_${randomUUID()}`;
    const recent = `msg_${randomUUID()}`;
    await db.kysely
      .insertInto('ReceivedWebhook')
      .values([
        { webhookId: old, receivedAt: new Date(Date.now() - 3_600_000) },
        { webhookId: recent, receivedAt: new Date() },
      ])
      .execute();

    expect(await pruneReceivedWebhooks(db, new Date(Date.now() - 600_000))).toBeGreaterThanOrEqual(1);
    const left = await db.kysely
      .selectFrom('ReceivedWebhook')
      .select('webhookId')
      .where('webhookId', 'in', [old, recent])
      .execute();
    expect(left.map((entry) => entry.webhookId)).toEqual([recent]);
  });
});
