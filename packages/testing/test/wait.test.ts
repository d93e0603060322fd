import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { getFreePort, waitFor } from '../src/index.js';

describe('waitFor', () => {
  it('returns the first truthy value', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? { calls } : undefined), {
      description: 'three calls',
      intervalMs: 5,
    });
    expect(value).toEqual({ calls: 3 });
  });

  it('keeps polling through thrown errors', async () => {
    let calls = 0;
    const value = await waitFor(
      async () => {
        calls += 1;
        if (calls < 3) throw new Error('not yet');
        return 'ready';
      },
      { description: 'ready', intervalMs: 5 },
    );
    expect(value).toBe('ready');
  });

  it('throws with the description and the last error on timeout', async () => {
    const started = Date.now();
    const attempt = waitFor(
      () => {
        throw new Error('still booting');
      },
      { description: 'the executor to ack', timeoutMs: 100, intervalMs: 10 },
    );
    await expect(attempt).rejects.toThrow(
      /waiting for the executor to ack; last attempt threw: still booting/,
    );
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('treats false as not yet', async () => {
    await expect(
      waitFor(() => false, { description: 'never', timeoutMs: 50, intervalMs: 10 }),
    ).rejects.toThrow(/never; the condition stayed false/);
  });
});

describe('getFreePort', () => {
  it('returns a port that can be listened on', async () => {
    const port = await getFreePort();
    expect(port).toBeGreaterThan(0);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
