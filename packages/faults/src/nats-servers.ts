import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFreePort } from '@tandem/testing';

/** One nats-server of the suite's own, which the suite may kill and start again on the same store. */
export interface NatsNode {
  name: string;
  url: string;
  port: number;
  /** Whether its process is running. */
  running(): boolean;
  /** SIGKILL: no flush, no goodbye to clients or peers. */
  kill(): Promise<void>;
  /** Starts it again with the same port, store and config. */
  start(): Promise<void>;
}

/** A set of nats-servers (one, or a cluster of three on loopback). */
export interface NatsServers {
  nodes: NatsNode[];
  /** Every node's client URL, comma-separated (the first is the one services are given). */
  urls: string[];
  stop(): Promise<void>;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function createNode(
  name: string,
  port: number,
  configFile: string,
  onLog?: (line: string) => void,
): NatsNode {
  let child: ChildProcess | null = null;
  const node: NatsNode = {
    name,
    port,
    url: `nats://127.0.0.1:${port}`,
    running: () => child !== null && child.exitCode === null && child.signalCode === null,
    kill: async () => {
      const current = child;
      if (current === null || current.exitCode !== null || current.signalCode !== null) return;
      const exited = new Promise((resolve) => current.once('exit', resolve));
      current.kill('SIGKILL');
      await exited;
    },
    start: async () => {
      const started = spawn('nats-server', ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = started;
      const output: string[] = [];
      started.stderr?.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        output.push(text);
        if (output.length > 30) output.shift();
        onLog?.(text);
      });
      const deadline = Date.now() + 15_000;
      while (!(await listening(port))) {
        if (started.exitCode !== null)
          throw new Error(`nats-server ${name} exited with ${started.exitCode}: ${output.join('')}`);
        if (Date.now() > deadline) throw new Error(`nats-server ${name} did not listen within 15 s`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
  };
  return node;
}

/**
 * Starts `size` nats-servers with JetStream on free loopback ports, each with its own store in a temporary
 * directory; with `size` > 1 they form one cluster (routes between all of them), as production would run
 * JetStream with replicas. Needs `nats-server` on PATH (apt-get install nats-server).
 */
export async function startNatsServers(options: {
  size: 1 | 3;
  onLog?: (line: string) => void;
}): Promise<NatsServers> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-faults-nats-'));
  const clientPorts: number[] = [];
  const routePorts: number[] = [];
  for (let index = 0; index < options.size; index += 1) {
    clientPorts.push(await getFreePort());
    routePorts.push(await getFreePort());
  }
  const nodes: NatsNode[] = [];
  for (let index = 0; index < options.size; index += 1) {
    const name = `n${index + 1}`;
    const lines = [
      `server_name: ${name}`,
      `listen: "127.0.0.1:${clientPorts[index]}"`,
      `jetstream { store_dir: "${join(dir, name)}" }`,
    ];
    if (options.size > 1) {
      const routes = routePorts
        .filter((_, other) => other !== index)
        .map((port) => `"nats-route://127.0.0.1:${port}"`);
      lines.push(
        `cluster { name: "tandem-faults", listen: "127.0.0.1:${routePorts[index]}", routes: [${routes.join(', ')}] }`,
      );
    }
    const configFile = join(dir, `${name}.conf`);
    await writeFile(configFile, `${lines.join('\n')}\n`);
    nodes.push(createNode(name, clientPorts[index] ?? 0, configFile, options.onLog));
  }
  await Promise.all(nodes.map((node) => node.start()));
  return {
    nodes,
    urls: nodes.map((node) => node.url),
    stop: async () => {
      await Promise.all(nodes.map((node) => node.kill()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
