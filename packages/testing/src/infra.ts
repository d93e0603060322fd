import { connect as connectTcp } from 'node:net';
import pg from 'pg';
import { z } from 'zod';

/** Where a piece of test infrastructure was found. */
export type InfraSource = 'env' | 'local' | 'container';

/** A reachable Postgres: `url` connects as a user allowed to create databases. */
export interface PostgresLocation {
  url: string;
  source: InfraSource;
}

/** A reachable nats-server with JetStream enabled. */
export interface NatsLocation {
  url: string;
  source: InfraSource;
}

/** Knobs for discovery; the defaults are what `findPostgres()` / `findNats()` use. */
export interface DiscoveryOptions {
  /** Environment to read `DATABASE_URL` / `NATS_URL` from; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** The standard local address to probe; default 127.0.0.1:5432 (user postgres) or 127.0.0.1:4222. */
  localUrl?: string;
  /** Whether to try testcontainers when nothing else answers; default true. */
  containers?: boolean;
  /** How long a probe may take; default 2000 ms. */
  probeTimeoutMs?: number;
}

/** The command that starts the machine's own Postgres cluster. */
export const START_POSTGRES_COMMAND =
  'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';
/** The command that starts the machine's own nats-server with JetStream. */
export const START_NATS_COMMAND =
  'start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log';

const LOCAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const LOCAL_NATS_URL = 'nats://127.0.0.1:4222';

// Started containers are kept referenced for the life of the process; testcontainers' reaper removes them.
const startedContainers: unknown[] = [];

let postgresPromise: Promise<PostgresLocation> | undefined;
let natsPromise: Promise<NatsLocation> | undefined;

/** Finds Postgres once per process: `DATABASE_URL`, then 127.0.0.1:5432, then testcontainers; else throws how to start it. */
export function findPostgres(): Promise<PostgresLocation> {
  postgresPromise ??= discoverPostgres().catch((error: unknown) => {
    postgresPromise = undefined;
    throw error;
  });
  return postgresPromise;
}

/** Finds NATS once per process: `NATS_URL`, then 127.0.0.1:4222, then testcontainers; else throws how to start it. */
export function findNats(): Promise<NatsLocation> {
  natsPromise ??= discoverNats().catch((error: unknown) => {
    natsPromise = undefined;
    throw error;
  });
  return natsPromise;
}

/** Uncached Postgres discovery with explicit options (what `findPostgres` runs). */
export async function discoverPostgres(options: DiscoveryOptions = {}): Promise<PostgresLocation> {
  const env = options.env ?? process.env;
  const timeoutMs = options.probeTimeoutMs ?? 2000;
  const fromEnv = nonEmpty(env['DATABASE_URL']);
  if (fromEnv !== undefined) {
    const problem = await probePostgres(fromEnv, timeoutMs);
    if (problem !== undefined) {
      throw new Error(
        `DATABASE_URL is set (${redactUrl(fromEnv)}) but Postgres there does not answer: ${problem}. ` +
          `Fix or unset DATABASE_URL; to start this machine's Postgres run: ${START_POSTGRES_COMMAND}`,
      );
    }
    return { url: fromEnv, source: 'env' };
  }

  const attempts: string[] = ['DATABASE_URL is not set'];
  const localUrl = options.localUrl ?? LOCAL_POSTGRES_URL;
  const localProblem = await probePostgres(localUrl, timeoutMs);
  if (localProblem === undefined) return { url: localUrl, source: 'local' };
  attempts.push(`${redactUrl(localUrl)}: ${localProblem}`);

  if (options.containers ?? true) {
    try {
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      const container = await new PostgreSqlContainer('postgres:15-alpine').start();
      startedContainers.push(container);
      return { url: container.getConnectionUri(), source: 'container' };
    } catch (error) {
      attempts.push(`testcontainers: ${describeError(error)}`);
    }
  } else {
    attempts.push('testcontainers: not tried (disabled)');
  }
  throw new Error(
    `No Postgres for tests (${attempts.join('; ')}). ` +
      `Start this machine's Postgres with: ${START_POSTGRES_COMMAND} ` +
      `(or set DATABASE_URL=postgres://USER@HOST:PORT/postgres, or run a Docker engine for testcontainers).`,
  );
}

/** Uncached NATS discovery with explicit options (what `findNats` runs). */
export async function discoverNats(options: DiscoveryOptions = {}): Promise<NatsLocation> {
  const env = options.env ?? process.env;
  const timeoutMs = options.probeTimeoutMs ?? 2000;
  const fromEnv = nonEmpty(env['NATS_URL']);
  if (fromEnv !== undefined) {
    const problem = await probeNats(fromEnv, timeoutMs);
    if (problem !== undefined) {
      throw new Error(
        `NATS_URL is set (${redactUrl(fromEnv)}) but no usable nats-server answers there: ${problem}. ` +
          `Fix or unset NATS_URL; to start this machine's nats-server run: ${START_NATS_COMMAND}`,
      );
    }
    return { url: fromEnv, source: 'env' };
  }

  const attempts: string[] = ['NATS_URL is not set'];
  const localUrl = options.localUrl ?? LOCAL_NATS_URL;
  const localProblem = await probeNats(localUrl, timeoutMs);
  if (localProblem === undefined) return { url: localUrl, source: 'local' };
  attempts.push(`${redactUrl(localUrl)}: ${localProblem}`);

  if (options.containers ?? true) {
    try {
      const { GenericContainer, Wait } = await import('testcontainers');
      const container = await new GenericContainer('nats:2.10')
        .withCommand(['-js'])
        .withExposedPorts(4222)
        .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
        .start();
      startedContainers.push(container);
      return { url: `nats://${container.getHost()}:${container.getMappedPort(4222)}`, source: 'container' };
    } catch (error) {
      attempts.push(`testcontainers: ${describeError(error)}`);
    }
  } else {
    attempts.push('testcontainers: not tried (disabled)');
  }
  throw new Error(
    `No NATS with JetStream for tests (${attempts.join('; ')}). ` +
      `Start this machine's nats-server with: ${START_NATS_COMMAND} ` +
      `(or set NATS_URL=nats://HOST:PORT, or run a Docker engine for testcontainers).`,
  );
}

/** Returns undefined when Postgres at `url` answers `select 1`, else why not. */
async function probePostgres(url: string, timeoutMs: number): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  // An error after connect (server shutting down) must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (error) {
    return describeError(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const NatsInfo = z.looseObject({
  server_id: z.string(),
  version: z.string(),
  jetstream: z.boolean().optional(),
});

/** Returns undefined when a nats-server with JetStream greets at `url`, else why not. */
async function probeNats(url: string, timeoutMs: number): Promise<string | undefined> {
  const first = url.split(',')[0]?.trim() ?? url;
  let host: string;
  let port: number;
  try {
    const parsed = new URL(first.includes('://') ? first : `nats://${first}`);
    host = parsed.hostname.replace(/^\[|\]$/g, '');
    port = parsed.port === '' ? 4222 : Number(parsed.port);
  } catch {
    return `not a NATS URL: ${redactUrl(first)}`;
  }
  const greeting = await new Promise<string>((resolve) => {
    const socket = connectTcp({ host, port });
    let received = '';
    const finish = (result: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish(`no greeting within ${timeoutMs} ms`), timeoutMs);
    socket.on('data', (data: Buffer) => {
      received += data.toString('utf8');
      const end = received.indexOf('\r\n');
      if (end >= 0 || received.length > 64 * 1024) finish(end >= 0 ? received.slice(0, end) : received);
    });
    socket.on('error', (error) => finish(`error: ${error.message}`));
    socket.on('close', () => finish(received === '' ? 'connection closed without a greeting' : received));
  });
  if (!greeting.startsWith('INFO '))
    return greeting.startsWith('error: ')
      ? greeting.slice(7)
      : `not a nats-server greeting: ${greeting.slice(0, 80)}`;
  let json: unknown;
  try {
    json = JSON.parse(greeting.slice(5));
  } catch {
    return 'unreadable INFO greeting';
  }
  const info = NatsInfo.safeParse(json);
  if (!info.success) return 'unexpected INFO greeting';
  if (info.data.jetstream !== true) {
    return `nats-server ${info.data.version} answers but JetStream is not enabled (start it with -js)`;
  }
  return undefined;
}

/** Hides a password in a connection URL so it can go into an error message. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = 'redacted';
    if (parsed.username !== '' && parsed.password === '' && parsed.protocol.startsWith('nats')) {
      // nats://token@host: the user part is the token.
      parsed.username = 'redacted';
    }
    return parsed.toString();
  } catch {
    return '<unparseable URL>';
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map(describeError).join(', ');
  }
  if (error instanceof Error) return error.message === '' ? error.name : error.message;
  return String(error);
}
