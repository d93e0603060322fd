import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PORT_SETTINGS, SERVICES, repositoryRoot, serviceEntry, type ServiceName } from './paths.js';

/** Environment variables that carry model credentials: only the services that call models get them. */
const MODEL_VARIABLES = /^(OPENAI_|TANDEM_(PLANNING|CODE)_(BASE_URL|API_KEY|MODEL))/;
const NEEDS_MODELS: ReadonlySet<ServiceName> = new Set(['planner', 'executor']);
/** The executor's secret store for http_request headers (TANDEM_SECRET_<NAME>, TANDEM_SECRETS_FILE). */
const SECRET_VARIABLES = /^TANDEM_SECRETS?_/;
const NATS_CREDENTIAL_VARIABLES: ReadonlySet<string> = new Set(['TANDEM_NATS_USER', 'TANDEM_NATS_PASSWORD']);

/** One running service process. */
export interface ServiceProcess {
  name: ServiceName;
  port: number;
  child: ChildProcess;
  /** The last lines it printed (for error reports). */
  recentOutput: string[];
}

/** The five services as child processes. */
export interface RunningServices {
  processes: Map<ServiceName, ServiceProcess>;
  url(service: ServiceName): string;
  /** SIGTERM to every service, then SIGKILL after the grace period; resolves when all have exited. */
  stop(graceMs?: number): Promise<void>;
  /** Stops (SIGKILL) and restarts one service with the same environment. */
  restart(service: ServiceName): Promise<void>;
}

/** Options of {@link startServices}. */
export interface StartServicesOptions {
  /** Shared environment for every service (DATABASE_URL, NATS_URL, prefix, model endpoint...). */
  env: Record<string, string | undefined>;
  ports: Record<ServiceName, number>;
  /** Receives each output line of each service. */
  onLine?: (service: ServiceName, line: string) => void;
  /**
   * Each service's own NATS user (TANDEM_NATS_USER / TANDEM_NATS_PASSWORD); a service gets only its own.
   * Without it the shared `env` decides (no credentials: a dev server without auth).
   */
  natsCredentials?: Partial<Record<ServiceName, { user: string; password: string }>>;
  /** Which services to start (default all five). */
  only?: readonly ServiceName[];
  readyTimeoutMs?: number;
}

function environmentFor(service: ServiceName, options: StartServicesOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(options.env)) {
    if (value === undefined) continue;
    // The approval service calls a model only for its optional second opinion on risk.
    const wantsModels =
      NEEDS_MODELS.has(service) ||
      (service === 'approval' && options.env['TANDEM_APPROVAL_RISK_OPINION'] === 'true');
    if (!wantsModels && MODEL_VARIABLES.test(key)) continue;
    // Secrets for http_request headers are the executor's alone.
    if (service !== 'executor' && SECRET_VARIABLES.test(key)) continue;
    // The first admin API token is the approval service's to ensure (it keeps the token rows).
    if (service !== 'approval' && key === 'TANDEM_ADMIN_TOKEN') continue;
    // NATS credentials are per service when given: never another service's.
    if (options.natsCredentials !== undefined && NATS_CREDENTIAL_VARIABLES.has(key)) continue;
    env[key] = value;
  }
  const nats = options.natsCredentials?.[service];
  if (nats !== undefined) {
    env['TANDEM_NATS_USER'] = nats.user;
    env['TANDEM_NATS_PASSWORD'] = nats.password;
  }
  for (const other of SERVICES) env[PORT_SETTINGS[other].variable] = String(options.ports[other]);
  return env;
}

async function waitReady(process: ServiceProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (process.child.exitCode !== null) {
      throw new Error(
        `${process.name} exited with code ${process.child.exitCode} before it was ready:\n${process.recentOutput.join('\n')}`,
      );
    }
    try {
      const response = await fetch(`http://127.0.0.1:${process.port}/readyz`);
      if (response.ok) return;
      last = `${response.status} ${await response.text()}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(
    `${process.name} was not ready within ${timeoutMs} ms (last: ${last}):\n${process.recentOutput.join('\n')}`,
  );
}

function spawnService(service: ServiceName, options: StartServicesOptions): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', serviceEntry(service)], {
    cwd: repositoryRoot,
    env: environmentFor(service, options),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const entry: ServiceProcess = { name: service, port: options.ports[service], child, recentOutput: [] };
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    const lines = createInterface({ input: stream });
    lines.on('line', (line) => {
      entry.recentOutput.push(line);
      if (entry.recentOutput.length > 40) entry.recentOutput.shift();
      options.onLine?.(service, line);
    });
  }
  return entry;
}

/** Starts each service as its own Node process (via tsx) and waits until every `/readyz` answers 200. */
export async function startServices(options: StartServicesOptions): Promise<RunningServices> {
  const processes = new Map<ServiceName, ServiceProcess>();
  const names = options.only ?? SERVICES;
  const stopOne = async (entry: ServiceProcess, signal: NodeJS.Signals, graceMs: number) => {
    if (entry.child.exitCode !== null || entry.child.signalCode !== null) return;
    const exited = new Promise((resolve) => entry.child.once('exit', resolve));
    entry.child.kill(signal);
    const timer = setTimeout(() => entry.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const running: RunningServices = {
    processes,
    url: (service) => `http://127.0.0.1:${options.ports[service]}`,
    stop: async (graceMs = 10_000) => {
      await Promise.all([...processes.values()].map((entry) => stopOne(entry, 'SIGTERM', graceMs)));
    },
    restart: async (service) => {
      const entry = processes.get(service);
      if (entry) await stopOne(entry, 'SIGKILL', 0);
      const next = spawnService(service, options);
      processes.set(service, next);
      await waitReady(next, options.readyTimeoutMs ?? 60_000);
    },
  };
  try {
    for (const service of names) processes.set(service, spawnService(service, options));
    await Promise.all(
      [...processes.values()].map((entry) => waitReady(entry, options.readyTimeoutMs ?? 60_000)),
    );
  } catch (error) {
    await running.stop(2_000);
    throw error;
  }
  return running;
}

/** Renders a pino JSON line compactly for a terminal; other lines pass through. */
export function formatLogLine(service: string, line: string): string {
  const label = `[${service}]`.padEnd(17);
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null) return `${label} ${line}`;
    const record: Record<string, unknown> = { ...parsed };
    const levels: Record<number, string> = {
      10: 'trace',
      20: 'debug',
      30: 'info',
      40: 'warn',
      50: 'error',
      60: 'fatal',
    };
    const level =
      typeof record['level'] === 'number' ? (levels[record['level']] ?? String(record['level'])) : 'info';
    const message = typeof record['msg'] === 'string' ? record['msg'] : '';
    for (const key of [
      'level',
      'time',
      'pid',
      'hostname',
      'name',
      'service',
      'msg',
      'consumer',
      'subject',
      'streamSeq',
      'correlationId',
      'messageId',
    ])
      delete record[key];
    const rest = Object.keys(record).length > 0 ? ` ${JSON.stringify(record)}` : '';
    return `${label} ${level.padEnd(5)} ${message}${rest}`;
  } catch {
    return `${label} ${line}`;
  }
}
