import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { migrate } from '@tandem/db';
import {
  SERVICES,
  startServices,
  type RunningServices,
  type ServiceName,
  type SupervisionEvent,
} from '@tandem/launcher';
import {
  allowToolsPolicy,
  createScriptedModelServer,
  createTestDatabase,
  createTestPrefix,
  createTestToken,
  getFreePort,
  streamNameFor,
  startNatsCluster,
  type NatsCluster,
  type ScriptedModelServer,
  type TestDatabase,
} from '@tandem/testing';
import pg from 'pg';
import { z } from 'zod';
import type { OutcomeSeen } from './checker.js';
import { startPostgresCluster, type PostgresCluster } from './postgres-cluster.js';
import { workloadScript } from './workload.js';

/** The short ack wait the suite asks for (TANDEM_ACK_WAIT_MS, the setting of the ack-wait work of issue 12). */
export const SUITE_ACK_WAIT_MS = 3_000;

/** How the stack of a scenario is built. */
export interface FaultStackOptions {
  /** 1: one nats-server; 3: a cluster of three on loopback. */
  natsNodes?: 1 | 3;
  /** Processes per service (default 1). */
  replicas?: number;
  /** Per-service replica counts over `replicas`. */
  replicasOf?: Partial<Record<ServiceName, number>>;
  env?: Record<string, string>;
}

/** Everything a scenario runs on: its own Postgres cluster and NATS, the five services, and the observers. */
export interface FaultStack {
  prefix: string;
  postgres: PostgresCluster;
  nats: NatsCluster;
  database: TestDatabase;
  sql: pg.Pool;
  services: RunningServices;
  model: ScriptedModelServer;
  nc: NatsConnection;
  js: JetStreamClient;
  auth: { authorization: string };
  /** Requests the effect sink received per Idempotency-Key. */
  effects: Map<string, number>;
  /** Outcome events from the durable consumer and from the plain subscriber. */
  durable: OutcomeSeen[];
  plain: OutcomeSeen[];
  /** Sandbox executions per idempotency key (sandbox-runner log lines). */
  sandboxExecutions: Map<string, number>;
  /** Every supervised restart; `expectExit` marks the next exit of a service as the suite's doing. */
  restarts: SupervisionEvent[];
  crashes: string[];
  expectExit(service: ServiceName, replica?: number): void;
  /** The last lines the services printed (for failure messages). */
  recentOutput: string[];
  stop(): Promise<void>;
}

const OutcomeMessage = z.object({
  id: z.string(),
  data: z.looseObject({ taskId: z.string(), status: z.string() }),
});

const OUTCOME_SUFFIXES = ['task.completed.v1', 'task.failed.v1', 'task.cancelled.v1'] as const;

const SandboxLogLine = z.looseObject({ msg: z.string(), key: z.string().optional() });

function parseOutcome(bytes: Uint8Array, seenAt: number): OutcomeSeen | null {
  try {
    const parsed = OutcomeMessage.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    if (!parsed.success) return null;
    return {
      eventId: parsed.data.id,
      taskId: parsed.data.data.taskId,
      status: parsed.data.data.status,
      seenAt,
    };
  } catch {
    return null;
  }
}

async function startSink(effects: Map<string, number>): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    const key = request.headers['idempotency-key'];
    const id = typeof key === 'string' ? key : `no-key:${request.url ?? ''}`;
    effects.set(id, (effects.get(id) ?? 0) + 1);
    request.resume();
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('ok');
    });
  });
  const port = await getFreePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${port}` };
}

async function waitForJetStream(nc: NatsConnection, timeoutMs: number): Promise<void> {
  const jsm = await jetstreamManager(nc, { timeout: 2_000, checkAPI: false });
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await jsm.getAccountInfo();
      return;
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  throw new Error(`JetStream was not available within ${timeoutMs} ms: ${String(last)}`);
}

/**
 * Starts a scenario's stack: a Postgres cluster and nats-server(s) of its own, a test database, the
 * scripted model, the effect sink, the five services (as `pnpm start` runs them, supervised), a plain
 * subscriber and a durable consumer on the outcome subjects.
 */
export async function startFaultStack(options: FaultStackOptions = {}): Promise<FaultStack> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => undefined);
  };
  try {
    const postgres = await startPostgresCluster();
    cleanups.push(() => postgres.stop());
    const database = await createTestDatabase({
      adminUrl: postgres.adminUrl,
      migrate: async (url) => void (await migrate({ url })),
    });
    const nats = await startNatsCluster(options.natsNodes ?? 1);
    cleanups.push(() => nats.stop());
    const effects = new Map<string, number>();
    const sink = await startSink(effects);
    cleanups.push(() => new Promise((resolve) => sink.server.close(resolve)));
    const model = await createScriptedModelServer({ match: workloadScript(() => sink.url) });
    cleanups.push(() => model.close());
    const { token } = await createTestToken(database.url, { role: 'admin', name: 'fault-suite' });
    const policyDir = await mkdtemp(join(tmpdir(), 'tandem-faults-policy-'));
    cleanups.push(() => rm(policyDir, { recursive: true, force: true }));
    // Workspace and http_request steps are allowed by a written rule; ask_human always needs a person.
    await writeFile(
      join(policyDir, 'policy.yaml'),
      allowToolsPolicy(['write_file', 'read_file', 'http_request']),
    );
    const prefix = createTestPrefix();

    const nc = await connect({
      servers: [...nats.urls],
      name: 'fault-suite-checker',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    cleanups.push(() => nc.close());
    await waitForJetStream(nc, 30_000);
    const plain: OutcomeSeen[] = [];
    for (const suffix of OUTCOME_SUFFIXES) {
      nc.subscribe(`${prefix}.${suffix}`, {
        callback: (error, message) => {
          if (error) return;
          const seen = parseOutcome(message.data, Date.now());
          if (seen) plain.push(seen);
        },
      });
    }
    await nc.flush();

    const sandboxExecutions = new Map<string, number>();
    const recentOutput: string[] = [];
    const restarts: SupervisionEvent[] = [];
    const crashes: string[] = [];
    const expected = new Map<string, number>();
    const ports = Object.fromEntries(
      await Promise.all(SERVICES.map(async (service) => [service, await getFreePort()] as const)),
    );
    const replicas = Object.fromEntries(
      SERVICES.map((service) => [service, options.replicasOf?.[service] ?? options.replicas ?? 1] as const),
    );
    const services = await startServices({
      env: {
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        DATABASE_URL: database.url,
        NATS_URL: nats.urls.join(','),
        TANDEM_SUBJECT_PREFIX: prefix,
        OPENAI_BASE_URL: model.url,
        OPENAI_API_KEY: 'sk-test-not-a-secret',
        TANDEM_PLANNING_MODEL: 'scripted-planner',
        TANDEM_CODE_MODEL: 'scripted-coder',
        TANDEM_MODEL_MAX_RETRIES: '0',
        TANDEM_AUTO_APPROVE: 'read,write,compute',
        TANDEM_APPROVAL_POLICY: join(policyDir, 'policy.yaml'),
        TANDEM_HTTP_ALLOW_HOSTS: '127.0.0.1',
        TANDEM_HTTP_ALLOW_HTTP: 'true',
        TANDEM_HTTP_ALLOW_PRIVATE_CIDRS: '127.0.0.1/32',
        TANDEM_SANDBOX_BACKEND: existsSync('/usr/bin/bwrap') ? 'bwrap' : 'process',
        TANDEM_DB_POOL_MAX: '5',
        // Settings of the other issue-12 work: short ack waits with heartbeats, stream replicas.
        TANDEM_ACK_WAIT_MS: String(SUITE_ACK_WAIT_MS),
        TANDEM_STREAM_REPLICAS: String(options.natsNodes ?? 1),
        // Leases and sweeps sized to the suite: a step or planning left behind is taken over within seconds,
        // and a task nothing can move on ends TASK.STUCK well after the ack wait (the checker counts it wrong).
        TANDEM_STEP_LEASE_MS: '5000',
        TANDEM_PLANNING_LEASE_MS: '5000',
        TANDEM_STUCK_AFTER_MS: '20000',
        LOG_LEVEL: 'info',
        ...options.env,
      },
      ports: {
        planner: ports['planner'] ?? 0,
        approval: ports['approval'] ?? 0,
        executor: ports['executor'] ?? 0,
        'sandbox-runner': ports['sandbox-runner'] ?? 0,
        learning: ports['learning'] ?? 0,
      },
      replicas,
      readyTimeoutMs: 90_000,
      onLine: (service, line) => {
        recentOutput.push(`[${service}] ${line.slice(0, 400)}`);
        if (recentOutput.length > 200) recentOutput.shift();
        if (service !== 'sandbox-runner' || !line.startsWith('{')) return;
        try {
          const parsed = SandboxLogLine.safeParse(JSON.parse(line));
          if (!parsed.success || parsed.data.key === undefined) return;
          if (
            parsed.data.msg === 'sandbox job finished' ||
            parsed.data.msg === 'a concurrent run of the same job stored first; discarding this result'
          )
            sandboxExecutions.set(parsed.data.key, (sandboxExecutions.get(parsed.data.key) ?? 0) + 1);
        } catch {
          // not a log line of ours
        }
      },
      onRestart: (event) => {
        restarts.push(event);
        process.stdout.write(`[fault-suite] ${event.message}\n`);
        const slot = `${event.service}#${event.replica}`;
        const pending = expected.get(slot) ?? 0;
        if (pending > 0) expected.set(slot, pending - 1);
        else {
          // Its dying words: the error line itself, not a stack frame below it.
          const words =
            event.lastLines.find(
              (line) => /^\S*Error\b|Error: |uncaught|fatal/i.test(line.trim()) && !/^\s*at /.test(line),
            ) ?? event.lastLines.at(-1);
          crashes.push(`${slot} exited on its own (${event.exit})${words ? `: ${words.slice(0, 300)}` : ''}`);
        }
      },
    });
    cleanups.push(() => services.stop(5_000));

    const js = jetstream(nc, { timeout: 5_000 });
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    const stream = streamNameFor(prefix, 'task');
    const durableName = 'fault_suite_checker';
    await jsm.consumers.add(stream, {
      durable_name: durableName,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // nats-server 2.9 has one filter subject per consumer: the outcomes are picked below.
      filter_subject: `${prefix}.task.>`,
      ack_wait: 30_000_000_000,
    });
    const durable: OutcomeSeen[] = [];
    // Stream sequences already counted: a nats-server killed with -9 can lose this consumer's acks and
    // deliver a message again, which is the same message of the stream, not a second outcome event.
    const counted = new Set<number>();
    const consumer = await js.consumers.get(stream, durableName);
    const messages = await consumer.consume({ max_messages: 100 });
    const consuming = (async () => {
      for await (const message of messages) {
        const outcome = OUTCOME_SUFFIXES.some((suffix) => message.subject === `${prefix}.${suffix}`);
        const seen = outcome && !counted.has(message.seq) ? parseOutcome(message.data, Date.now()) : null;
        if (seen) {
          counted.add(message.seq);
          durable.push(seen);
        }
        message.ack();
      }
    })().catch(() => undefined);
    cleanups.push(async () => {
      await messages.close();
      await consuming;
    });

    const sql = new pg.Pool({ connectionString: database.url, max: 2 });
    // A Postgres restart closes idle clients: that is the scenario, not a failure of the checker.
    sql.on('error', () => undefined);
    cleanups.push(() => sql.end());
    return {
      prefix,
      postgres,
      nats,
      database,
      sql,
      services,
      model,
      nc,
      js,
      auth: { authorization: `Bearer ${token}` },
      effects,
      durable,
      plain,
      sandboxExecutions,
      restarts,
      crashes,
      recentOutput,
      expectExit: (service, replica = 0) => {
        const slot = `${service}#${replica}`;
        expected.set(slot, (expected.get(slot) ?? 0) + 1);
      },
      stop: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
