import { migrate } from '@tandem/db';
import { createTestDatabase, findNats, getFreePort, waitFor, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServices, type RunningServices, type ServiceName } from '../src/index.js';

async function readyz(url: string): Promise<number | undefined> {
  try {
    return (await fetch(`${url}/readyz`)).status;
  } catch {
    return undefined;
  }
}

describe('the launcher supervises its services (issue 12, item 6)', () => {
  let database: TestDatabase;
  let services: RunningServices;
  const lines: string[] = [];

  beforeAll(async () => {
    database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
    const nats = await findNats();
    const port = await getFreePort();
    const ports = {
      planner: 0,
      approval: 0,
      executor: 0,
      'sandbox-runner': 0,
      learning: port,
    } satisfies Record<ServiceName, number>;
    services = await startServices({
      env: {
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        DATABASE_URL: database.url,
        NATS_URL: nats.url,
        TANDEM_SUBJECT_PREFIX: `test_sup_${Date.now()}`,
        LOG_LEVEL: 'warn',
      },
      ports,
      only: ['learning'],
      onLine: (service, line) => lines.push(`[${service}] ${line}`),
    });
  });

  afterAll(async () => {
    await services?.stop();
    await database?.drop();
  });

  it('restarts a service killed with SIGKILL, says so, and /readyz answers again', async () => {
    const url = services.url('learning');
    expect(await readyz(url)).toBe(200);
    const first = services.processes.get('learning');
    const firstPid = first?.child.pid;
    expect(firstPid).toBeTypeOf('number');
    process.kill(firstPid ?? 0, 'SIGKILL');
    await waitFor(async () => ((await readyz(url)) === undefined ? true : undefined), {
      description: 'the killed service to stop answering',
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    await waitFor(async () => ((await readyz(url)) === 200 ? true : undefined), {
      description: `learning to come back after kill -9 (launcher output: ${lines.slice(-5).join(' | ')})`,
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    expect(services.processes.get('learning')?.child.pid).not.toBe(firstPid);
    expect(
      lines.some((line) =>
        /learning exited unexpectedly \(signal SIGKILL\); restarting in \d+ ms/.test(line),
      ),
    ).toBe(true);
  });

  it('does not restart services it was asked to stop', async () => {
    const entry = services.processes.get('learning');
    await services.stop();
    expect(entry?.child.exitCode !== null || entry?.child.signalCode !== null).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await readyz(services.url('learning'))).toBeUndefined();
    expect(services.processes.get('learning')?.child.pid).toBe(entry?.child.pid);
  });
});
