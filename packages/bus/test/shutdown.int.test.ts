import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { consumerNameFor, streamNameFor } from '@tandem/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from './harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

const FIXTURE = fileURLToPath(new URL('./fixtures/consume-then-drain.ts', import.meta.url));
const EXIT_WITHIN_MS = 15_000;

function runFixture(args: string[]): Promise<{
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, EXIT_WITHIN_MS);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

describe('shutdown', () => {
  it('a process that consumed and drained exits by itself', async () => {
    const result = await runFixture([harness.natsUrl, harness.prefix, harness.database.url]);
    // pg 8.23 prints a DeprecationWarning under the Prisma adapter (not the bus's doing); nothing else may appear.
    const unexpected = result.stderr
      .split('\n')
      .filter(
        (line) =>
          line.trim() !== '' &&
          !line.includes('DeprecationWarning: Calling client.query()') &&
          !line.includes('--trace-deprecation'),
      );
    expect(unexpected).toEqual([]);
    expect(result.timedOut).toBe(false);
    expect(result.stdout).toBe('drained\n');
    expect(result.code).toBe(0);
    // The message was acked before the process left.
    const info = await harness.bus.jsm.consumers.info(
      streamNameFor(harness.prefix, 'step'),
      consumerNameFor(harness.prefix, 'drain-fixture'),
    );
    expect(info.num_ack_pending).toBe(0);
    expect(info.ack_floor.stream_seq).toBe(1);
  });

  it('drain() resolves while a handler is in flight, after it finished', async () => {
    const bus = await harness.connectAnother();
    let finished = false;
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => {
      markStarted = resolve;
    });
    await bus.consume({
      durable: 'drain-in-flight',
      subject: 'task.drain-in-flight.v1',
      schema: { safeParse: (input: unknown) => ({ success: true as const, data: input }) },
      messageId: () => 'only',
      handle: async () => {
        markStarted();
        await new Promise((resolve) => setTimeout(resolve, 300));
        finished = true;
      },
    });
    await bus.publish(
      bus.subject('task.drain-in-flight.v1'),
      { any: 'thing' },
      { msgId: 'drain-in-flight-1' },
    );
    await started;
    await bus.drain();
    expect(finished).toBe(true);
    expect(bus.nc.isClosed()).toBe(true);
    await expect(
      bus.consume({
        durable: 'late',
        subject: 'task.late.v1',
        schema: { safeParse: (input: unknown) => ({ success: true as const, data: input }) },
        messageId: () => 'x',
        handle: async () => undefined,
      }),
    ).rejects.toThrow(/draining/);
  });
});
