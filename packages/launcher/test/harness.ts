import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createDb, migrate, type Db } from '@tandem/db';
import {
  cleanupNatsPrefix,
  createScriptedModelServer,
  createTestDatabase,
  createTestPrefix,
  createTestToken,
  findNats,
  getFreePort,
  type ScriptMatcher,
  type ScriptedModelServer,
  type TestDatabase,
} from '@tandem/testing';
import pg from 'pg';
import { z } from 'zod';
import { DEFAULT_CONSUMER_SETTINGS } from '@tandem/bus';
import {
  connectionOptionsFor,
  provisionAs,
  startAuthenticatedNats,
  type AuthenticatedNats,
} from '../src/nats-auth.js';
import { ensureNats, type NatsServer } from '../src/nats.js';
import { SERVICES, startServices, type RunningServices, type ServiceName } from '../src/index.js';

const OutcomeEvent = z.object({
  id: z.string(),
  type: z.string(),
  data: z.looseObject({
    taskId: z.string(),
    status: z.string(),
    request: z.unknown(),
    result: z.unknown().optional(),
    error: z.looseObject({ code: z.string(), message: z.string() }).optional(),
    planVersion: z.number().optional(),
    reason: z.string().nullable().optional(),
  }),
});
/** A task outcome CloudEvent as seen by an outside system. */
export type OutcomeEvent = z.infer<typeof OutcomeEvent>;

/** Five services as processes against a test database, a test prefix and a scripted model. */
export interface Stack {
  prefix: string;
  database: TestDatabase;
  /** The stack's database through the typed layer (`db.kysely`), for the tests' inspections. */
  db: Db;
  /** A plain pool on the stack's database (the benchmarks and the fault suite read with it). */
  sql: pg.Pool;
  nc: NatsConnection;
  model: ScriptedModelServer;
  services: RunningServices;
  /** An admin token in the stack's database, and the header that sends it. */
  adminToken: string;
  auth: { authorization: string };
  outcomes: OutcomeEvent[];
  /** What the stack's own authenticated nats-server logged as permissions violations (`natsAuth`). */
  natsViolations: string[];
  url(service: ServiceName): string;
  /** Publishes raw bytes on `<prefix>.<suffix>` through JetStream (as another system would). */
  publish(suffix: string, payload: Uint8Array | string | object, msgId?: string): Promise<void>;
  waitForOutcome(match: (event: OutcomeEvent) => boolean, description: string): Promise<OutcomeEvent>;
  /**
   * Stops all five services and the stack's own nats-server (`ownNats`), then starts them again on the
   * same ports, JetStream store and database.
   */
  restartAll(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the stack; `env` adds or overrides service settings. */
export async function startStack(options: {
  match: ScriptMatcher;
  env?: Record<string, string>;
  /** Runs after the scripted model is up and before the services start (e.g. to write a models file). */
  beforeStart?: (modelUrl: string) => Promise<void>;
  /** Start a nats-server of the stack's own on a free port (with a temporary JetStream store). */
  ownNats?: boolean;
  /**
   * Run that own nats-server (implies `ownNats`) as `pnpm start` does: one user per service with only its
   * own subjects, streams and consumers provisioned first, and the test connected as an outside system.
   */
  natsAuth?: boolean;
  /** An approval policy (YAML) for the stack, written to a temporary file (TANDEM_APPROVAL_POLICY). */
  policy?: string;
}): Promise<Stack> {
  const policyDir = options.policy === undefined ? null : await mkdtemp(join(tmpdir(), 'tandem-e2e-policy-'));
  const policyEnv: Record<string, string> = {};
  if (policyDir !== null && options.policy !== undefined) {
    policyEnv['TANDEM_APPROVAL_POLICY'] = join(policyDir, 'policy.yaml');
    await writeFile(policyEnv['TANDEM_APPROVAL_POLICY'], options.policy);
  }
  const ownNatsWanted = options.ownNats === true || options.natsAuth === true;
  const natsPort = ownNatsWanted ? await getFreePort() : 0;
  const natsStore = ownNatsWanted ? await mkdtemp(join(tmpdir(), 'tandem-e2e-nats-')) : null;
  const prefix = createTestPrefix();
  const natsViolations: string[] = [];
  // Started again by restartAll with the same port, store and passwords.
  const startOwnNats = async (): Promise<{ server: NatsServer; auth: AuthenticatedNats | null }> => {
    if (options.natsAuth !== true || natsStore === null) {
      const server = await ensureNats({
        port: natsPort,
        probePort: natsPort,
        storeDir: natsStore ?? undefined,
      });
      return { server, auth: null };
    }
    const auth = await startAuthenticatedNats({
      onLog: (text) => {
        for (const line of text.split('\n')) if (/violation/i.test(line)) natsViolations.push(line);
      },
      port: natsPort,
      prefix,
      storeDir: join(natsStore, 'jetstream'),
      authDir: join(natsStore, 'auth'),
    });
    await provisionAs({
      servers: auth.url,
      credentials: auth.provisioner,
      prefix,
      settings: DEFAULT_CONSUMER_SETTINGS,
    });
    return { server: auth, auth };
  };
  const started = ownNatsWanted ? await startOwnNats() : null;
  let ownNats: NatsServer | null = started?.server ?? null;
  const natsAuth: AuthenticatedNats | null = started?.auth ?? null;
  const nats = ownNats ? { url: ownNats.url } : await findNats();
  const outside = natsAuth?.external['integration'];
  const database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  // Before the services start, so the approval service finds an admin token and creates none.
  const { token: adminToken } = await createTestToken(database.url, { role: 'admin', name: 'e2e-admin' });
  const model = await createScriptedModelServer({ match: options.match });
  await options.beforeStart?.(model.url);
  const nc = await connect({
    servers: nats.url,
    name: 'e2e-test',
    ...(outside === undefined ? {} : connectionOptionsFor(outside)),
  });
  const outcomes: OutcomeEvent[] = [];
  // Waiters are told the moment an outcome arrives (latency figures in the benchmark depend on it).
  const waiters = new Set<{
    match: (event: OutcomeEvent) => boolean;
    resolve: (event: OutcomeEvent) => void;
  }>();
  for (const suffix of ['task.completed.v1', 'task.failed.v1', 'task.cancelled.v1']) {
    nc.subscribe(`${prefix}.${suffix}`, {
      callback: (error, message) => {
        if (error) return;
        const parsed = OutcomeEvent.safeParse(JSON.parse(new TextDecoder().decode(message.data)));
        if (!parsed.success) return;
        outcomes.push(parsed.data);
        for (const waiter of waiters) {
          if (!waiter.match(parsed.data)) continue;
          waiters.delete(waiter);
          waiter.resolve(parsed.data);
        }
      },
    });
  }
  await nc.flush();
  const ports = Object.fromEntries(
    await Promise.all(SERVICES.map(async (service) => [service, await getFreePort()] as const)),
  );
  const portsByService: Record<ServiceName, number> = {
    planner: ports['planner'] ?? 0,
    approval: ports['approval'] ?? 0,
    executor: ports['executor'] ?? 0,
    'sandbox-runner': ports['sandbox-runner'] ?? 0,
    learning: ports['learning'] ?? 0,
  };
  const output: string[] = [];
  let services: RunningServices;
  try {
    services = await startServices({
      env: {
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        DATABASE_URL: database.url,
        NATS_URL: nats.url,
        TANDEM_SUBJECT_PREFIX: prefix,
        OPENAI_BASE_URL: model.url,
        OPENAI_API_KEY: 'sk-test-not-a-secret',
        TANDEM_PLANNING_MODEL: 'scripted-planner',
        TANDEM_CODE_MODEL: 'scripted-coder',
        TANDEM_MODEL_MAX_RETRIES: '0',
        LOG_LEVEL: process.env['E2E_LOG_LEVEL'] ?? 'warn',
        ...policyEnv,
        ...options.env,
      },
      ports: portsByService,
      ...(natsAuth === null ? {} : { natsCredentials: natsAuth.services }),
      onLine: (service, line) => {
        output.push(`[${service}] ${line}`);
        if (process.env['E2E_LOG_LEVEL']) process.stdout.write(`[${service}] ${line}\n`);
      },
    });
  } catch (error) {
    await nc.close();
    await model.close();
    await database.drop();
    // An authenticated server refuses the anonymous clean-up; its store is removed below anyway.
    if (natsAuth === null) await cleanupNatsPrefix(nats.url, prefix);
    await ownNats?.stop();
    if (natsStore) await rm(natsStore, { recursive: true, force: true });
    if (policyDir) await rm(policyDir, { recursive: true, force: true });
    throw error;
  }
  const sql = new pg.Pool({ connectionString: database.url, max: 2 });
  const db = createDb({ url: database.url, poolMax: 2 });
  const js = (await import('@nats-io/jetstream')).jetstream(nc);
  return {
    prefix,
    database,
    db,
    sql,
    nc,
    model,
    services,
    adminToken,
    auth: { authorization: `Bearer ${adminToken}` },
    outcomes,
    natsViolations,
    url: (service) => services.url(service),
    publish: async (suffix, payload, msgId) => {
      const bytes =
        payload instanceof Uint8Array
          ? payload
          : new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
      await js.publish(`${prefix}.${suffix}`, bytes, { msgID: msgId ?? randomUUID() });
    },
    waitForOutcome: (match, description) => {
      const seen = outcomes.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise<OutcomeEvent>((resolve, reject) => {
        const waiter = {
          match,
          resolve: (event: OutcomeEvent) => {
            clearTimeout(timer);
            resolve(event);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(
              `timed out after 60000 ms waiting for ${description}\noutcomes seen: ${JSON.stringify(outcomes.map((outcome) => outcome.data))}\n${output.slice(-40).join('\n')}`,
            ),
          );
        }, 60_000);
        waiters.add(waiter);
      });
    },
    restartAll: async () => {
      if (!ownNats) throw new Error('restartAll needs startStack({ ownNats: true }) or natsAuth');
      await services.stop();
      await ownNats.stop();
      ownNats = (await startOwnNats()).server;
      for (const service of SERVICES) await services.restart(service);
    },
    stop: async () => {
      await services.stop();
      await sql.end();
      await db.close();
      await nc.drain();
      await model.close();
      if (natsAuth === null) await cleanupNatsPrefix(nats.url, prefix);
      await ownNats?.stop();
      if (natsStore) await rm(natsStore, { recursive: true, force: true });
      if (policyDir) await rm(policyDir, { recursive: true, force: true });
      await database.drop();
    },
  };
}

/** Shared with the benchmarks and the fault suite (they live in @tandem/testing). */
export { allowToolsPolicy, firstUserText } from '@tandem/testing';

/** A CloudEvent requesting a task, as another system would publish it. */
export function taskRequested(
  data: Record<string, unknown>,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: 'urn:test:billing',
    type: 'tandem.task.requested',
    time: new Date().toISOString(),
    data,
    ...overrides,
  };
}

/** Whether an outcome answers the CloudEvent with this id (JSONB may reorder the request's keys). */
export function answers(event: Record<string, unknown>): (outcome: OutcomeEvent) => boolean {
  // Plain checks, no schema: the benchmark runs this for every waiter on every outcome.
  return (outcome) => {
    const request = outcome.data.request;
    return (
      typeof request === 'object' &&
      request !== null &&
      'source' in request &&
      'id' in request &&
      request.source === event['source'] &&
      request.id === event['id']
    );
  };
}

/** The id of the task stored for a CloudEvent id, or undefined (not stored yet). */
export async function taskIdOfExternalId(
  stack: Pick<Stack, 'db'>,
  externalId: unknown,
): Promise<string | undefined> {
  const row = await stack.db.kysely
    .selectFrom('Task')
    .select('id')
    .where('externalId', '=', String(externalId))
    .executeTakeFirst();
  return row?.id;
}

/** How many sandbox runs a task has (an int, as `count(*)::int` gives it). */
export async function sandboxRunCount(stack: Pick<Stack, 'db'>, taskId: string): Promise<number> {
  const { n } = await stack.db.kysely
    .selectFrom('SandboxRun')
    .select((eb) => eb.cast<number>(eb.fn.countAll(), 'integer').as('n'))
    .where('taskId', '=', taskId)
    .executeTakeFirstOrThrow();
  return n;
}
