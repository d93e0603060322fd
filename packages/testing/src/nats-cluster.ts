import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFreePort } from './wait.js';

/** One nats-server of a {@link NatsCluster}: its own ports and store directory, kept across restarts. */
export interface NatsClusterNode {
  /** The server name (`n1`, `n2`, ...), as JetStream reports peers and stream leaders. */
  readonly name: string;
  /** The client port on 127.0.0.1. */
  readonly port: number;
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** The route port (0 for a single server, which runs without clustering). */
  readonly clusterPort: number;
  /** The HTTP monitoring port (`/healthz`, `/jsz`). */
  readonly monitorPort: number;
  /** The JetStream store directory (`-sd`), kept when the node is killed and restarted. */
  readonly storeDir: string;
  /** Whether the process is running. */
  readonly running: boolean;
  /**
   * Signals the process (default SIGKILL) and resolves once it exited (at once for SIGSTOP/SIGCONT,
   * which pause and resume it). Nothing happens when it is not running.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process again with the same ports and store; resolves once `/healthz` answers ok. */
  start(): Promise<void>;
}

/** nats-servers with JetStream on loopback, started by a test (see {@link startNatsCluster}). */
export interface NatsCluster {
  readonly nodes: readonly NatsClusterNode[];
  /** Every node's client URL. */
  readonly urls: readonly string[];
  /** The client URLs comma-separated, as `NATS_URL` takes them. */
  readonly url: string;
  /**
   * Resolves once every running node answers `/healthz` ok and (clustered) agrees on a JetStream meta
   * leader that sees all the other running nodes as current peers.
   */
  waitForJetStream(timeoutMs?: number): Promise<void>;
  /** Kills every node and removes the store directories (and logs, unless `logDir` was given). */
  stop(): Promise<void>;
}

/** Options of {@link startNatsCluster}. */
export interface StartNatsClusterOptions {
  /** The nats-server binary (default `NATS_SERVER_BIN`, else `nats-server` on the PATH). */
  binary?: string;
  /** How long to wait for the cluster to be ready (default 30 s). */
  readyTimeoutMs?: number;
  /** Where each node writes `<name>.log` (default: a temporary directory removed by `stop()`). */
  logDir?: string;
  /** The cluster name (default `tandem-test`). */
  clusterName?: string;
}

const DEFAULT_READY_TIMEOUT_MS = 30_000;

/**
 * Starts `size` nats-servers with JetStream on loopback, each with its own store directory, routed to
 * each other as one cluster (server names `n1`..`nN`, one cluster name: JetStream clustering needs
 * both). `size` 1 starts a single server without clustering (for kill-and-restart tests). Resolves once
 * JetStream is ready; call `stop()` in `afterAll`. Streams need `num_replicas` <= `size`.
 */
export async function startNatsCluster(
  size = 3,
  options: StartNatsClusterOptions = {},
): Promise<NatsCluster> {
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`size must be a positive integer, got ${size}`);
  // A free port can be taken between finding it and the server binding it (other tests, outgoing
  // connections): a node that exits on start is tried again on fresh ports, twice.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(size, options);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof NodeExitedOnStart)) throw error;
    }
  }
}

/** A nats-server that exited before it was healthy; the message carries the end of its log. */
class NodeExitedOnStart extends Error {}

async function startClusterOnce(size: number, options: StartNatsClusterOptions): Promise<NatsCluster> {
  const binary = options.binary ?? process.env['NATS_SERVER_BIN'] ?? 'nats-server';
  const clusterName = options.clusterName ?? 'tandem-test';
  const root = await mkdtemp(join(tmpdir(), 'tandem-nats-cluster-'));
  const logDir = options.logDir ?? root;
  const ports: Array<{ port: number; clusterPort: number; monitorPort: number }> = [];
  for (let index = 0; index < size; index++) {
    ports.push({
      port: await getFreePort(),
      clusterPort: size === 1 ? 0 : await getFreePort(),
      monitorPort: await getFreePort(),
    });
  }

  const nodes = ports.map((assigned, index) => {
    const name = `n${index + 1}`;
    const routes = ports
      .filter((_other, otherIndex) => otherIndex !== index)
      .map((other) => `nats://127.0.0.1:${other.clusterPort}`)
      .join(',');
    const args = [
      ...['-a', '127.0.0.1', '-p', String(assigned.port), '-m', String(assigned.monitorPort)],
      ...['-js', '-sd', join(root, name), '--server_name', name],
      ...(size === 1
        ? []
        : [
            '-cluster',
            `nats://127.0.0.1:${assigned.clusterPort}`,
            '-routes',
            routes,
            '--cluster_name',
            clusterName,
          ]),
    ];
    return createNode({
      name,
      binary,
      args,
      logPath: join(logDir, `${name}.log`),
      ...assigned,
      storeDir: join(root, name),
    });
  });

  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((node) => node.url),
    url: nodes.map((node) => node.url).join(','),
    waitForJetStream: (timeoutMs = DEFAULT_READY_TIMEOUT_MS) => waitForJetStream(nodes, size > 1, timeoutMs),
    async stop() {
      // A paused (SIGSTOPped) server still dies of SIGKILL.
      await Promise.all(nodes.map((node) => node.kill('SIGKILL')));
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((node) => node.start()));
    await cluster.waitForJetStream(options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

function createNode(spec: {
  name: string;
  binary: string;
  args: string[];
  logPath: string;
  port: number;
  clusterPort: number;
  monitorPort: number;
  storeDir: string;
}): NatsClusterNode {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log: WriteStream | undefined;
  const node: NatsClusterNode = {
    name: spec.name,
    port: spec.port,
    url: `nats://127.0.0.1:${spec.port}`,
    clusterPort: spec.clusterPort,
    monitorPort: spec.monitorPort,
    storeDir: spec.storeDir,
    get running() {
      return child !== undefined;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child === undefined) return;
      child.kill(signal);
      // SIGSTOP and SIGCONT pause and resume the server: there is no exit to wait for.
      if (signal === 'SIGSTOP' || signal === 'SIGCONT') return;
      await exited;
    },
    async start() {
      if (child !== undefined) return;
      log ??= createWriteStream(spec.logPath, { flags: 'a' });
      const started = spawn(spec.binary, spec.args, { stdio: ['ignore', 'pipe', 'pipe'] });
      started.stdout?.pipe(log, { end: false });
      started.stderr?.pipe(log, { end: false });
      child = started;
      exited = new Promise((resolve) => {
        started.once('exit', () => {
          if (child === started) child = undefined;
          resolve();
        });
      });
      const failed = new Promise<never>((_resolve, reject) => {
        started.once('error', reject);
        void exited.then(() => {
          let tail = '';
          try {
            tail = readFileSync(spec.logPath, 'utf8').split('\n').slice(-6).join('\n');
          } catch {
            // no log yet
          }
          reject(
            new NodeExitedOnStart(
              `nats-server ${spec.name} exited on start (log: ${spec.logPath}):\n${tail}`,
            ),
          );
        });
      });
      failed.catch(() => undefined);
      await Promise.race([
        poll(() => healthy(spec.monitorPort), DEFAULT_READY_TIMEOUT_MS, `${spec.name} /healthz`),
        failed,
      ]);
    },
  };
  return node;
}

async function waitForJetStream(
  nodes: readonly NatsClusterNode[],
  clustered: boolean,
  timeoutMs: number,
): Promise<void> {
  await poll(
    async () => {
      const running = nodes.filter((node) => node.running);
      if (running.length === 0) return false;
      for (const node of running) if (!(await healthy(node.monitorPort))) return false;
      if (!clustered) return true;
      // Every running node names the same meta leader, and the leader sees the others as current.
      const metas = await Promise.all(running.map((node) => metaCluster(node.monitorPort)));
      const leader = metas[0]?.leader;
      if (leader === undefined || leader === '' || metas.some((meta) => meta?.leader !== leader))
        return false;
      const leaderMeta = metas[running.findIndex((node) => node.name === leader)];
      if (leaderMeta === undefined) return false;
      const current = new Set(leaderMeta.replicas.filter((peer) => peer.current).map((peer) => peer.name));
      return running.every((node) => node.name === leader || current.has(node.name));
    },
    timeoutMs,
    'the JetStream meta leader and current peers',
  );
}

async function healthy(monitorPort: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${monitorPort}/healthz`);
    return response.ok;
  } catch {
    return false;
  }
}

interface MetaCluster {
  leader: string | undefined;
  replicas: Array<{ name: string; current: boolean }>;
}

async function metaCluster(monitorPort: number): Promise<MetaCluster | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${monitorPort}/jsz`);
    if (!response.ok) return undefined;
    const body: unknown = await response.json();
    const meta = field(body, 'meta_cluster');
    const leader = field(meta, 'leader');
    const replicas = field(meta, 'replicas');
    return {
      leader: typeof leader === 'string' ? leader : undefined,
      replicas: Array.isArray(replicas)
        ? replicas.flatMap((peer: unknown) => {
            const name = field(peer, 'name');
            return typeof name === 'string' ? [{ name, current: field(peer, 'current') === true }] : [];
          })
        : [],
    };
  } catch {
    return undefined;
  }
}

function field(value: unknown, key: string): unknown {
  if (typeof value !== 'object' || value === null || !(key in value)) return undefined;
  return Reflect.get(value, key);
}

async function poll(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
