import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A reachable NATS server, possibly one this process started. */
export interface NatsServer {
  url: string;
  started: boolean;
  stop(): Promise<void>;
}

/** Resolves true when something accepts TCP connections at host:port within the timeout. */
export function isListening(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Uses nats-server at 127.0.0.1:4222 when one answers there; otherwise starts `nats-server` from PATH
 * with JetStream on a temporary store and a free port. Without authentication: for tests and for a
 * NATS_URL the caller chose; `pnpm start` runs {@link startAuthenticatedNats} instead.
 */
export async function ensureNats(options: {
  port: number;
  probePort?: number;
  /** Where JetStream keeps its data; kept after stop. Without it, a temporary store removed on stop. */
  storeDir?: string;
}): Promise<NatsServer> {
  const probePort = options.probePort ?? 4222;
  if (await isListening('127.0.0.1', probePort))
    return { url: `nats://127.0.0.1:${probePort}`, started: false, stop: async () => undefined };
  return startNatsServer({ port: options.port, storeDir: options.storeDir });
}

/**
 * Starts `nats-server` from PATH on 127.0.0.1:`port` with JetStream, either with a config file (which
 * sets JetStream, store and users; host and port given here win) or with a store directory.
 */
export async function startNatsServer(options: {
  port: number;
  /** Where JetStream keeps its data; kept after stop. Without it (and without a config), a temporary store. */
  storeDir?: string;
  /** A nats-server config file (e.g. with users and permissions). */
  configFile?: string;
  /** Receives what the server logs (errors and warnings, e.g. permissions violations). */
  onLog?: (text: string) => void;
}): Promise<NatsServer> {
  const persistent = options.storeDir !== undefined || options.configFile !== undefined;
  const storeDir =
    options.configFile !== undefined
      ? undefined
      : (options.storeDir ?? (await mkdtemp(join(tmpdir(), 'tandem-nats-'))));
  if (options.storeDir !== undefined) await mkdir(options.storeDir, { recursive: true });
  const args =
    options.configFile !== undefined
      ? ['-c', options.configFile, '-a', '127.0.0.1', '-p', String(options.port)]
      : ['-a', '127.0.0.1', '-p', String(options.port), '-js', '-sd', storeDir ?? ''];
  const child: ChildProcess = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString());
    options.onLog?.(chunk.toString());
    if (stderr.length > 20) stderr.shift();
  });
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(
        new Error(
          `could not start nats-server from PATH (${error.message}); install it (apt-get install -y nats-server) or set NATS_URL`,
        ),
      ),
    );
    child.once('exit', (code) =>
      reject(new Error(`nats-server exited with code ${code}: ${stderr.join('')}`)),
    );
  });
  const deadline = Date.now() + 10_000;
  while (!(await Promise.race([isListening('127.0.0.1', options.port), failed]))) {
    if (Date.now() > deadline) throw new Error('nats-server did not start listening within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  failed.catch(() => undefined);
  return {
    url: `nats://127.0.0.1:${options.port}`,
    started: true,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      if (!persistent && storeDir !== undefined) await rm(storeDir, { recursive: true, force: true });
    },
  };
}
