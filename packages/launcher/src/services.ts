import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { getFreePort } from '@tandem/testing';
import { PORT_SETTINGS, SERVICES, repositoryRoot, serviceEntry, type ServiceName } from './paths.js';
import {
  DEFAULT_RESTART_POLICY,
  describeExit,
  nextRestartDelay,
  type RestartPolicy,
} from './restart-policy.js';

/** Environment variables that carry model credentials: only the services that call models get them. */
const MODEL_VARIABLES = /^(OPENAI_|TANDEM_(PLANNING|CODE)_(BASE_URL|API_KEY|MODEL))/;
const NEEDS_MODELS: ReadonlySet<ServiceName> = new Set(['planner', 'executor']);
/** The executor's secret store for http_request headers (TANDEM_SECRET_<NAME>, TANDEM_SECRETS_FILE). */
const SECRET_VARIABLES = /^TANDEM_SECRETS?_/;
const NATS_CREDENTIAL_VARIABLES: ReadonlySet<string> = new Set(['TANDEM_NATS_USER', 'TANDEM_NATS_PASSWORD']);

/** One running service process. */
export interface ServiceProcess {
  name: ServiceName;
  /** Which replica of the service (0 is the first; its port is the one in `ports`). */
  replica: number;
  port: number;
  child: ChildProcess;
  /** The last lines it printed (for error reports). */
  recentOutput: string[];
}

/** The five services as child processes. */
export interface RunningServices {
  /** The current process of each service's first replica (replaced when it is restarted). */
  processes: Map<ServiceName, ServiceProcess>;
  /** The current processes of every replica of a service. */
  instances(service: ServiceName): ServiceProcess[];
  url(service: ServiceName, replica?: number): string;
  /** SIGTERM to every service, then SIGKILL after the grace period; resolves when all have exited. */
  stop(graceMs?: number): Promise<void>;
  /** Stops (SIGKILL) and restarts one service (every replica) with the same environment. */
  restart(service: ServiceName): Promise<void>;
  /** Resolves when every replica of a service answers `/readyz` (e.g. after a supervised restart). */
  waitReady(service: ServiceName, timeoutMs?: number): Promise<void>;
}

/** A restart the launcher made after a service exited unexpectedly. */
export interface SupervisionEvent {
  service: ServiceName;
  replica: number;
  /** `code 1` or `signal SIGKILL`. */
  exit: string;
  /** How long the process had been up. */
  uptimeMs: number;
  /** The wait before it is started again. */
  delayMs: number;
  /** The line the launcher prints for it. */
  message: string;
  /** The last lines the process printed (its dying words, e.g. an uncaught error). */
  lastLines: string[];
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
  /**
   * Processes per service (default 1). Replicas after the first listen on free ports of their own and
   * share the service's durable consumers.
   */
  replicas?: Partial<Record<ServiceName, number>>;
  /**
   * How a service that exits unexpectedly (after it was ready) is started again; `false`: left down.
   * Default {@link DEFAULT_RESTART_POLICY}: 0.5 s doubling to 30 s, reset after a minute up.
   */
  restart?: RestartPolicy | false;
  /** Receives each supervised restart; without it the line goes to `onLine` (and to stderr without that). */
  onRestart?: (event: SupervisionEvent) => void;
}

function environmentFor(
  service: ServiceName,
  options: StartServicesOptions,
  ownPort: number,
): Record<string, string> {
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
  env[PORT_SETTINGS[service].variable] = String(ownPort);
  return env;
}

async function waitReady(process: ServiceProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (process.child.exitCode !== null || process.child.signalCode !== null) {
      throw new Error(
        `${process.name} exited (${describeExit(process.child.exitCode, process.child.signalCode)}) before it was ready:\n${process.recentOutput.join('\n')}`,
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

function spawnService(
  service: ServiceName,
  replica: number,
  port: number,
  options: StartServicesOptions,
): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', serviceEntry(service)], {
    cwd: repositoryRoot,
    env: environmentFor(service, options, port),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const entry: ServiceProcess = { name: service, replica, port, child, recentOutput: [] };
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

/** One replica of one service, across its restarts. */
interface Slot {
  service: ServiceName;
  replica: number;
  port: number;
  current: ServiceProcess;
  startedAt: number;
  /** The last restart delay (null: not restarted yet, or reset). */
  lastDelayMs: number | null;
  /** Restarts only after the slot was ready once, and never while the launcher stops or restarts it. */
  supervised: boolean;
  deliberate: boolean;
  timer: NodeJS.Timeout | null;
}

/**
 * Starts each service as its own Node process (via tsx) and waits until every `/readyz` answers 200. From
 * then on a service that exits without being asked is started again with backoff (`restart`), with a
 * loud line saying how it exited and when it comes back; `stop()` stops them without restarting.
 */
export async function startServices(options: StartServicesOptions): Promise<RunningServices> {
  const processes = new Map<ServiceName, ServiceProcess>();
  const names = options.only ?? SERVICES;
  const policy = options.restart === false ? null : (options.restart ?? DEFAULT_RESTART_POLICY);
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const slots: Slot[] = [];
  let stopping = false;

  const report = (event: SupervisionEvent) => {
    if (options.onRestart) options.onRestart(event);
    else if (options.onLine) options.onLine(event.service, event.message);
    else process.stderr.write(`${event.message}\n`);
  };

  const launch = (slot: Slot) => {
    slot.current = spawnService(slot.service, slot.replica, slot.port, options);
    slot.startedAt = Date.now();
    watch(slot);
  };
  const watch = (slot: Slot) => {
    const entry = slot.current;
    if (slot.replica === 0) processes.set(slot.service, entry);
    entry.child.once('exit', (code, signal) => {
      if (stopping || slot.deliberate || !slot.supervised || policy === null) return;
      if (slot.current !== entry) return;
      const uptimeMs = Date.now() - slot.startedAt;
      const delayMs = nextRestartDelay(slot.lastDelayMs, uptimeMs, policy);
      slot.lastDelayMs = delayMs;
      const name = slot.replica === 0 ? slot.service : `${slot.service}#${slot.replica}`;
      report({
        service: slot.service,
        replica: slot.replica,
        exit: describeExit(code, signal),
        uptimeMs,
        delayMs,
        lastLines: entry.recentOutput.slice(-40),
        message:
          `!!! ${name} exited unexpectedly (${describeExit(code, signal)}); restarting in ${delayMs} ms ` +
          `(it was up ${Math.round(uptimeMs / 1000)} s)`,
      });
      slot.timer = setTimeout(() => {
        slot.timer = null;
        if (stopping || slot.deliberate) return;
        launch(slot);
      }, delayMs);
    });
  };

  const stopProcess = async (entry: ServiceProcess, signal: NodeJS.Signals, graceMs: number) => {
    if (entry.child.exitCode !== null || entry.child.signalCode !== null) return;
    const exited = new Promise((resolve) => entry.child.once('exit', resolve));
    entry.child.kill(signal);
    const timer = setTimeout(() => entry.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const slotsOf = (service: ServiceName) => slots.filter((slot) => slot.service === service);
  const readyOf = async (service: ServiceName, timeoutMs: number) => {
    await Promise.all(slotsOf(service).map((slot) => waitForCurrent(slot, timeoutMs)));
  };
  // A supervised restart replaces the slot's process: wait for whichever process is current.
  const waitForCurrent = async (slot: Slot, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const entry = slot.current;
      try {
        await waitReady(entry, Math.max(0, deadline - Date.now()));
        return;
      } catch (error) {
        if (slot.current === entry && slot.timer === null) throw error;
        if (Date.now() >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };

  const running: RunningServices = {
    processes,
    instances: (service) => slotsOf(service).map((slot) => slot.current),
    url: (service, replica = 0) => {
      const slot = slotsOf(service).find((candidate) => candidate.replica === replica);
      return `http://127.0.0.1:${slot?.port ?? options.ports[service]}`;
    },
    stop: async (graceMs = 10_000) => {
      stopping = true;
      for (const slot of slots) {
        if (slot.timer !== null) clearTimeout(slot.timer);
        slot.timer = null;
      }
      await Promise.all(slots.map((slot) => stopProcess(slot.current, 'SIGTERM', graceMs)));
    },
    restart: async (service) => {
      stopping = false;
      for (const slot of slotsOf(service)) {
        slot.deliberate = true;
        if (slot.timer !== null) clearTimeout(slot.timer);
        slot.timer = null;
        await stopProcess(slot.current, 'SIGKILL', 0);
        launch(slot);
        slot.lastDelayMs = null;
        slot.deliberate = false;
      }
      await Promise.all(
        slotsOf(service).map(async (slot) => {
          await waitReady(slot.current, readyTimeoutMs);
          slot.supervised = true;
        }),
      );
    },
    waitReady: (service, timeoutMs = readyTimeoutMs) => readyOf(service, timeoutMs),
  };
  try {
    for (const service of names) {
      const count = Math.max(1, options.replicas?.[service] ?? 1);
      for (let replica = 0; replica < count; replica += 1) {
        const port = replica === 0 ? options.ports[service] : await getFreePort();
        const slot: Slot = {
          service,
          replica,
          port,
          current: spawnService(service, replica, port, options),
          startedAt: Date.now(),
          lastDelayMs: null,
          supervised: false,
          deliberate: false,
          timer: null,
        };
        slots.push(slot);
        watch(slot);
      }
    }
    await Promise.all(
      slots.map(async (slot) => {
        await waitReady(slot.current, readyTimeoutMs);
        slot.supervised = true;
      }),
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
