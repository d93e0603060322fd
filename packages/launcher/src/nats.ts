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
 * with JetStream on a temporary store and a free port.
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
  const persistent = options.storeDir !== undefined;
  const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), 'tandem-nats-')));
  if (persistent) await mkdir(storeDir, { recursive: true });
  const child: ChildProcess = spawn(
    'nats-server',
    ['-a', '127.0.0.1', '-p', String(options.port), '-js', '-sd', storeDir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(
        new Error(
          `could not start nats-server from PATH (${error.message}); install it (apt-get install -y nats-server) or set NATS_URL`,
        ),
      ),
    );
    child.once('exit', (code) => reject(new Error(`nats-server exited with code ${code}`)));
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
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      if (!persistent) await rm(storeDir, { recursive: true, force: true });
    },
  };
}
