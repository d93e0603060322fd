import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { SandboxRunRequested, createEnvelope } from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import { createTestDatabase, type TestDatabase } from '@tandem/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleMessage } from '@tandem/bus';
import {
  createRunningJobs,
  sandboxRunRequested,
  type RunRequestedDeps,
} from '../src/handlers/sandbox-run-requested.js';
import { SandboxCeilingsConfig } from '../src/limits.js';
import {
  createBwrapBackend,
  type SandboxBackend,
  type SandboxJob,
  type SandboxResult,
  type SandboxRunOptions,
} from '../src/sandbox/index.js';

// Issue 12, item 2 and 7: a redelivered sandbox job must not run its program again. These tests drive the
// declared consumer through the framework's handleMessage as the bus does (a throw means a redelivery), with the weaker process backend
// (what is tested is the bookkeeping around a run, not the box) counted from the runner's side: the
// program cannot fake how often the backend was asked to run it.

let database: TestDatabase;
let db: Db;
let scratchRoot: string;
let real: SandboxBackend;
const ceilings = SandboxCeilingsConfig.parse({});

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url });
  scratchRoot = await mkdtemp(path.join(tmpdir(), 'tandem-run-once-'));
  await chmod(scratchRoot, 0o711);
  real = createBwrapBackend({ scratchRoot, isolation: 'none', bwrapPath: '/nonexistent/bwrap' });
});

afterAll(async () => {
  await real?.close();
  await db?.close();
  await database?.drop();
  if (scratchRoot !== undefined) await rm(scratchRoot, { recursive: true, force: true });
});

/** A backend that counts its runs; `hold(count)` makes the next `count` runs wait until released (a runner that hangs or dies). */
function countingBackend(): {
  backend: SandboxBackend;
  runs: () => number;
  hold: (count: number) => { release: () => void };
} {
  let runs = 0;
  let toHold = 0;
  let gate: Promise<void> = Promise.resolve();
  const backend: SandboxBackend = {
    name: real.name,
    check: () => real.check(),
    warm: () => real.warm(),
    drain: () => real.drain(),
    close: () => real.close(),
    async run(job: SandboxJob, options?: SandboxRunOptions): Promise<SandboxResult> {
      runs += 1;
      if (toHold > 0) {
        toHold -= 1;
        await gate;
      }
      return real.run(job, options);
    },
  };
  return {
    backend,
    runs: () => runs,
    hold: (count) => {
      let release = (): void => {};
      toHold = count;
      gate = new Promise<void>((resolve) => (release = resolve));
      return { release: () => release() };
    },
  };
}

function job(): ReturnType<typeof createEnvelope<'sandbox.run-requested', typeof SandboxRunRequested.data>> {
  const taskId = randomUUID();
  const stepId = randomUUID();
  return createEnvelope(
    SandboxRunRequested,
    {
      idempotencyKey: `${stepId}:1`,
      taskId,
      stepId,
      language: 'python',
      code: 'print("ran")\nresult = 6 * 7',
      limits: { timeoutMs: 10_000, maxOutputBytes: 64 * 1024 },
    },
    { correlationId: taskId, causationId: null },
  );
}

/** One delivery of the consumer, as the bus makes it (resolves: acked; throws: redelivered). */
function handleRunRequested(
  deps: RunRequestedDeps,
  envelope: ReturnType<typeof job>,
  context: { messageId: string; log: pino.Logger },
): Promise<void> {
  return handleMessage(deps.db, sandboxRunRequested, deps, 5, envelope, {
    messageId: context.messageId,
    consumer: `test_${sandboxRunRequested.durable}`,
    subject: `test.${SandboxRunRequested.subjectSuffix}`,
    streamSeq: 1,
    deliveryCount: 1,
    headers: {},
    json: envelope,
    log: context.log,
    working: () => {},
  });
}

function capturingLog(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines: () => lines };
}

async function completedEvents(idempotencyKey: string): Promise<Array<Record<string, unknown>>> {
  const rows = await db.pool.query<{ data: Record<string, unknown> }>(
    `SELECT "payload"->'data' AS "data" FROM "Outbox"
      WHERE "subject" LIKE '%.sandbox.run-completed.v1' AND "payload"->'data'->>'idempotencyKey' = $1
      ORDER BY "seq"`,
    [idempotencyKey],
  );
  return rows.rows.map((row) => row.data);
}

describe('a sandbox job runs once per idempotency key', () => {
  it('a failure between the run and storing its result, then a redelivery: the program ran once', async () => {
    const counting = countingBackend();
    const running = createRunningJobs();
    const { log } = capturingLog();
    const envelope = job();
    let failed = false;
    const deps = {
      db,
      prefix: 'test',
      backend: counting.backend,
      ceilings,
      running,
      // The seam between a finished run and storing it: the first time, something fails there.
      onRun: () => {
        if (failed) return;
        failed = true;
        throw new Error('injected failure after the run, before its result is stored');
      },
    };
    const first = await handleRunRequested(deps, envelope, { messageId: envelope.id, log }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(first).toBeInstanceOf(Error);
    // The consumer framework redelivers a message whose handler threw.
    await handleRunRequested(deps, envelope, { messageId: envelope.id, log });
    expect(counting.runs()).toBe(1);
    const events = await completedEvents(envelope.data.idempotencyKey);
    expect(events.length).toBeGreaterThanOrEqual(1);
    expect(events.at(-1)).toMatchObject({ outcome: 'ok', value: 42, stdout: 'ran\n' });
    const stored = await db.pool.query(
      `SELECT "status", "attempts", "outcome" FROM "SandboxRun" WHERE "idempotencyKey" = $1`,
      [envelope.data.idempotencyKey],
    );
    expect(stored.rows).toEqual([{ status: 'finished', attempts: 1, outcome: 'ok' }]);
  });

  it('a redelivery of a finished job republishes its stored result and runs nothing', async () => {
    const counting = countingBackend();
    const { log, lines } = capturingLog();
    const envelope = job();
    const deps = {
      db,
      prefix: 'test',
      backend: counting.backend,
      ceilings,
      running: createRunningJobs(),
    };
    await handleRunRequested(deps, envelope, { messageId: envelope.id, log });
    // Redelivered (its ack was lost), and again in another replica.
    await handleRunRequested(deps, envelope, { messageId: envelope.id, log });
    await handleRunRequested({ ...deps, running: createRunningJobs() }, envelope, {
      messageId: envelope.id,
      log,
    });
    expect(counting.runs()).toBe(1);
    const events = await completedEvents(envelope.data.idempotencyKey);
    expect(events).toHaveLength(3);
    const runIds = new Set(events.map((event) => event['runId']));
    expect(runIds.size).toBe(1);
    for (const event of events) expect(event).toMatchObject({ outcome: 'ok', value: 42, stdout: 'ran\n' });
    expect(
      lines().filter((line) => line['msg'] === 'sandbox job already ran; republished its stored result'),
    ).toHaveLength(2);
  });

  it('a runner that died mid-job: the redelivery is a counted, logged re-run, and the dead attempt cannot store', async () => {
    const counting = countingBackend();
    const { log, lines } = capturingLog();
    const envelope = job();
    const base = { db, prefix: 'test', backend: counting.backend, ceilings };
    // The first runner hangs in the job and is taken for dead: its delivery does not finish in time.
    const held = counting.hold(1);
    const dead = handleRunRequested({ ...base, running: createRunningJobs() }, envelope, {
      messageId: envelope.id,
      log,
    });
    await waitUntil(async () => (await attemptsOf(envelope.data.idempotencyKey)) === 1);
    // The redelivery, in another runner, while the first is still stuck.
    await handleRunRequested({ ...base, running: createRunningJobs() }, envelope, {
      messageId: envelope.id,
      log,
    });
    // The stuck run ends after all: its result comes too late to be stored.
    held.release();
    await dead;
    expect(await attemptsOf(envelope.data.idempotencyKey)).toBe(2);
    expect(lines().some((line) => line['msg'] === 'running an interrupted sandbox job again')).toBe(true);
    expect(
      lines().some(
        (line) => line['msg'] === 'a newer attempt of this sandbox job took over; discarding this result',
      ),
    ).toBe(true);
    const events = await completedEvents(envelope.data.idempotencyKey);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'ok', value: 42, runAttempt: 2 });
  });

  it('a job interrupted at every attempt ends with SANDBOX.INTERRUPTED, without running again', async () => {
    const counting = countingBackend();
    const { log } = capturingLog();
    const envelope = job();
    const base = { db, prefix: 'test', backend: counting.backend, ceilings, maxAttempts: 2 };
    const held = counting.hold(2);
    const pending: Array<Promise<void>> = [];
    for (const attempt of [0, 1]) {
      pending.push(
        handleRunRequested({ ...base, running: createRunningJobs() }, envelope, {
          messageId: envelope.id,
          log,
        }).catch(() => {}),
      );
      await waitUntil(async () => (await attemptsOf(envelope.data.idempotencyKey)) === attempt + 1);
    }
    await handleRunRequested({ ...base, running: createRunningJobs() }, envelope, {
      messageId: envelope.id,
      log,
    });
    expect(counting.runs()).toBe(2);
    const events = await completedEvents(envelope.data.idempotencyKey);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'sandbox_error', errorCode: 'SANDBOX.INTERRUPTED' });
    held.release();
    await Promise.all(pending);
    // The late attempts changed nothing.
    expect(await completedEvents(envelope.data.idempotencyKey)).toHaveLength(1);
  });
});

describe('a redelivery to the process that still runs the job', () => {
  it('is refused as retryable (not acked, not run), and the running job stores once', async () => {
    const counting = countingBackend();
    const { log } = capturingLog();
    const envelope = job();
    const deps = {
      db,
      prefix: 'test',
      backend: counting.backend,
      ceilings,
      running: createRunningJobs(),
    };
    const held = counting.hold(1);
    const first = handleRunRequested(deps, envelope, { messageId: envelope.id, log });
    await waitUntil(async () => (await attemptsOf(envelope.data.idempotencyKey)) === 1);
    await expect(handleRunRequested(deps, envelope, { messageId: envelope.id, log })).rejects.toMatchObject({
      code: 'SANDBOX.UNAVAILABLE',
      retryable: true,
    });
    held.release();
    await first;
    expect(counting.runs()).toBe(1);
    expect(await completedEvents(envelope.data.idempotencyKey)).toHaveLength(1);
  });
});

async function attemptsOf(idempotencyKey: string): Promise<number | null> {
  const rows = await db.pool.query<{ attempts: number }>(
    `SELECT "attempts" FROM "SandboxRun" WHERE "idempotencyKey" = $1`,
    [idempotencyKey],
  );
  return rows.rows[0]?.attempts ?? null;
}

async function waitUntil(probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('timed out waiting');
}
