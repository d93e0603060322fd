import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { migrate } from '@tandem/db';
import {
  cleanupNatsPrefix,
  createTestDatabase,
  createTestPrefix,
  findNats,
  getFreePort,
  waitFor,
  type TestDatabase,
} from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PORT_SETTINGS, SERVICES } from '../src/index.js';

const START = fileURLToPath(new URL('../src/start.ts', import.meta.url));

/** The pids of a process's children whose command line names `needle`, read from /proc. */
function childrenOf(pid: number, needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent !== pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function readyz(port: number): Promise<number | undefined> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
  } catch {
    return undefined;
  }
}

describe('pnpm start supervises its services (issue 12, item 6)', () => {
  let database: TestDatabase;
  let natsUrl: string;
  const prefix = createTestPrefix();
  let launcher: ChildProcess;
  let output = '';
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
    natsUrl = (await findNats()).url;
    for (const service of SERVICES) ports[service] = await getFreePort();
    launcher = spawn(process.execPath, ['--import', 'tsx', START], {
      env: {
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        DATABASE_URL: database.url,
        NATS_URL: natsUrl,
        TANDEM_SUBJECT_PREFIX: prefix,
        TANDEM_DEMO: 'off',
        TANDEM_START_LOGS: 'quiet',
        LOG_LEVEL: 'warn',
        ...Object.fromEntries(
          SERVICES.map((service) => [PORT_SETTINGS[service].variable, String(ports[service])]),
        ),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    launcher.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    launcher.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(async () => (output.includes('Tandem is running') ? true : undefined), {
      description: `pnpm start to be running (output: ${output.slice(-2000)})`,
      timeoutMs: 90_000,
      intervalMs: 200,
    });
  });

  afterAll(async () => {
    if (launcher && launcher.exitCode === null && launcher.signalCode === null) {
      const exited = new Promise((resolve) => launcher.once('exit', resolve));
      launcher.kill('SIGTERM');
      await exited;
    }
    await cleanupNatsPrefix(natsUrl, prefix);
    await database?.drop();
  });

  it('brings back a service killed with SIGKILL, says so even when quiet, and stops only when asked', async () => {
    const pid = launcher.pid ?? 0;
    const [executor] = childrenOf(pid, 'services/executor/src/main.ts');
    expect(executor).toBeTypeOf('number');
    process.kill(executor ?? 0, 'SIGKILL');
    await waitFor(
      async () =>
        /executor exited unexpectedly \(signal SIGKILL\); restarting in/.test(output) ? true : undefined,
      {
        description: 'the launcher to say it restarts the executor',
        timeoutMs: 10_000,
        intervalMs: 100,
      },
    );
    await waitFor(
      async () => {
        const [next] = childrenOf(pid, 'services/executor/src/main.ts');
        return next !== undefined && next !== executor && (await readyz(ports['executor'] ?? 0)) === 200
          ? true
          : undefined;
      },
      { description: 'a new executor answering /readyz', timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(launcher.exitCode).toBeNull();

    const children = SERVICES.flatMap((service) => childrenOf(pid, `services/${service}/src/main.ts`));
    expect(children).toHaveLength(SERVICES.length);
    const exited = new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code)));
    launcher.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(children.filter(alive)).toEqual([]);
    expect(output.match(/exited unexpectedly/g) ?? []).toHaveLength(1);
  });
});
