import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_CONSUMER_SETTINGS, type NatsService } from '@tandem/bus';
import { ApprovalDecided, PublicSubjects, querySubjectFor, streamNameFor } from '@tandem/contracts';
import { migrate } from '@tandem/db';
import {
  BaseConfig,
  createLogger,
  createServiceRuntime,
  parseConfig,
  type ServiceRuntime,
} from '@tandem/service-kit';
import {
  createTestDatabase,
  createTestPrefix,
  getFreePort,
  waitFor,
  type TestDatabase,
} from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectionOptionsFor,
  provisionAs,
  startAuthenticatedNats,
  type AuthenticatedNats,
} from '../src/nats-auth.js';

// Hole 9 of issue 11: one shared NATS identity (no_auth_user) with the union of every service's rights.
// Here a real nats-server runs with the generated per-user config, and the services connect as they do in
// production: through createServiceRuntime with TANDEM_NATS_USER / TANDEM_NATS_PASSWORD from their config.

const prefix = createTestPrefix();
let directory: string;
let nats: AuthenticatedNats;
let database: TestDatabase;
let admin: NatsConnection;
let adminJsm: JetStreamManager;
const runtimes = new Map<NatsService, ServiceRuntime>();
const serverLog: string[] = [];

async function runtimeFor(service: NatsService): Promise<ServiceRuntime> {
  const existing = runtimes.get(service);
  if (existing) return existing;
  const config = parseConfig(BaseConfig, {
    DATABASE_URL: database.url,
    NATS_URL: nats.url,
    TANDEM_SUBJECT_PREFIX: prefix,
    TANDEM_NATS_USER: service,
    TANDEM_NATS_PASSWORD: nats.services[service].password,
    TANDEM_DB_POOL_MAX: '2',
  });
  const runtime = await createServiceRuntime({
    service,
    config,
    log: createLogger({ service, level: process.env['LOG_LEVEL'] ?? 'silent' }),
  });
  runtimes.set(service, runtime);
  return runtime;
}

async function messagesIn(entity: 'task' | 'approval'): Promise<number> {
  return (await adminJsm.streams.info(streamNameFor(prefix, entity))).state.messages;
}

/** Collects the connection's async errors (nats.js reports permission violations there). */
function watchErrors(nc: NatsConnection): string[] {
  const errors: string[] = [];
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'error') errors.push(String(status.error));
    }
  })();
  return errors;
}

const decision = () => ({ id: randomUUID(), forged: true });

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'tandem-nats-auth-'));
  nats = await startAuthenticatedNats({
    onLog: (text) => serverLog.push(text),
    port: await getFreePort(),
    prefix,
    storeDir: join(directory, 'jetstream'),
    authDir: join(directory, 'auth'),
  });
  await provisionAs({
    servers: nats.url,
    credentials: nats.provisioner,
    prefix,
    settings: DEFAULT_CONSUMER_SETTINGS,
  });
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  admin = await connect({ servers: nats.url, ...connectionOptionsFor(nats.provisioner) });
  adminJsm = await jetstreamManager(admin);
});

afterAll(async () => {
  await Promise.allSettled([...runtimes.values()].map((runtime) => runtime.stop()));
  await admin?.close();
  await nats?.stop();
  await database?.drop();
  if (directory) await rm(directory, { recursive: true, force: true });
});

describe('NATS least privilege', () => {
  it('refuses a connection without credentials or with a wrong password', async () => {
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(/authoriz/i);
    await expect(
      connect({ servers: nats.url, reconnect: false, user: 'approval', pass: 'not-the-password' }),
    ).rejects.toThrow(/authoriz/i);
  });

  it('lets approval, logged in from its config, publish approval.decided', async () => {
    const approval = await runtimeFor('approval');
    const before = await messagesIn('approval');
    const ack = await approval.bus.publish(approval.bus.subject(ApprovalDecided.subjectSuffix), decision(), {
      msgId: randomUUID(),
    });
    expect(ack.stream).toBe(streamNameFor(prefix, 'approval'));
    expect(await messagesIn('approval')).toBe(before + 1);
  });

  it("refuses a service publishing another service's subject (the planner forging approval.decided)", async () => {
    const planner = await runtimeFor('planner');
    const errors = watchErrors(planner.bus.nc);
    const before = await messagesIn('approval');
    await expect(
      planner.bus.publish(planner.bus.subject(ApprovalDecided.subjectSuffix), decision(), {
        msgId: randomUUID(),
      }),
    ).rejects.toThrow();
    await waitFor(() => errors.find((error) => /permissions violation for publish/i.test(error)), {
      description: 'the permissions violation reported to the planner',
      timeoutMs: 5_000,
    });
    expect(errors.join('\n')).toContain(`${prefix}.approval.decided.v1`);
    expect(await messagesIn('approval')).toBe(before);
    // The server's side of the refusal, as an operator sees it.
    await waitFor(
      () =>
        serverLog.some((text) =>
          new RegExp(`Publish Violation.*User "planner".*${prefix}\\.approval\\.decided\\.v1`).test(text),
        ),
      { description: 'the violation in the server log', timeoutMs: 5_000 },
    );
  });

  it('gives a service no right to create streams or consumers', async () => {
    const planner = await runtimeFor('planner');
    await expect(
      planner.bus.jsm.streams.add({
        name: `${streamNameFor(prefix, 'task')}_ROGUE`,
        subjects: [`${prefix}.rogue.>`],
      }),
    ).rejects.toThrow();
    await expect(
      planner.bus.jsm.consumers.add(streamNameFor(prefix, 'approval'), {
        durable_name: 'rogue-reader',
        filter_subject: `${prefix}.approval.decided.v1`,
      }),
    ).rejects.toThrow();
    const names: string[] = [];
    for await (const consumer of adminJsm.consumers.list(streamNameFor(prefix, 'approval'))) {
      names.push(consumer.name);
    }
    expect(names).not.toContain('rogue-reader');
  });

  it('lets an outside system submit a task but not publish approval.decided nor read service traffic', async () => {
    const integration = nats.external['integration'];
    if (integration === undefined) throw new Error('the launcher config has no integration user');
    const outside = await connect({ servers: nats.url, ...connectionOptionsFor(integration) });
    const errors = watchErrors(outside);
    try {
      const js = jetstream(outside, { timeout: 2_000 });
      const tasksBefore = await messagesIn('task');
      await js.publish(`${prefix}.${PublicSubjects.taskRequested}`, JSON.stringify({ id: randomUUID() }), {
        msgID: randomUUID(),
      });
      expect(await messagesIn('task')).toBe(tasksBefore + 1);

      const approvalsBefore = await messagesIn('approval');
      await expect(
        js.publish(`${prefix}.${ApprovalDecided.subjectSuffix}`, JSON.stringify(decision()), {
          msgID: randomUUID(),
        }),
      ).rejects.toThrow();
      expect(await messagesIn('approval')).toBe(approvalsBefore);

      outside.subscribe(`${prefix}.approval.>`);
      outside.subscribe('_INBOX.>');
      await waitFor(
        () =>
          errors.some((error) => error.includes(`Publish to "${prefix}.approval.decided.v1"`)) &&
          errors.some((error) => error.includes(`Subscription to "${prefix}.approval.>"`)) &&
          errors.some((error) => error.includes('Subscription to "_INBOX.>"')),
        { description: 'the three permissions violations', timeoutMs: 5_000 },
      );
    } finally {
      await outside.close();
    }
  });

  it('runs a service on its provisioned consumer and refuses a consumer that was not provisioned', async () => {
    const planner = await runtimeFor('planner');
    const received: unknown[] = [];
    const passthrough = { safeParse: (input: unknown) => ({ success: true as const, data: input }) };
    const intake = await planner.bus.consume({
      durable: 'planner-intake',
      subject: PublicSubjects.taskRequested,
      schema: passthrough,
      messageId: () => randomUUID(),
      handle: async (message) => {
        received.push(message);
      },
    });
    try {
      // The task the outside system submitted above arrives through the provisioned durable.
      await waitFor(() => received.length > 0 || undefined, {
        description: 'the submitted task',
        timeoutMs: 10_000,
      });
    } finally {
      await intake.stop();
    }
    // A dead letter from the max-deliveries advisory reads the message by sequence: in its own streams only.
    const stored = await planner.bus.jsm.streams.getMessage(streamNameFor(prefix, 'task'), { seq: 1 });
    expect(stored?.seq).toBe(1);
    await expect(
      planner.bus.jsm.streams.getMessage(streamNameFor(prefix, 'approval'), { seq: 1 }),
    ).rejects.toThrow(/permissions violation/i);
    await expect(
      planner.bus.consume({
        durable: 'planner-undeclared',
        subject: PublicSubjects.taskRequested,
        schema: passthrough,
        messageId: () => randomUUID(),
        handle: async () => undefined,
      }),
    ).rejects.toMatchObject({ code: 'BUS.NOT_PROVISIONED' });
  });

  it("answers the planner's learning query through each user's own inbox", async () => {
    const learning = await runtimeFor('learning');
    const planner = await runtimeFor('planner');
    const subject = querySubjectFor(prefix, 'learning-patterns');
    const subscription = learning.bus.nc.subscribe(subject, {
      callback: (_error, message) => {
        message.respond(JSON.stringify({ patterns: [] }));
      },
    });
    await learning.bus.nc.flush();
    try {
      const reply = await planner.bus.nc.request(subject, JSON.stringify({ kind: 'plan' }), {
        timeout: 2_000,
      });
      expect(reply.json()).toEqual({ patterns: [] });
    } finally {
      subscription.unsubscribe();
    }
  });
});
