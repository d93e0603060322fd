import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { findNats, getFreePort } from '@tandem/testing';
import { describe, expect, it } from 'vitest';
import { ensureNats, isListening } from '../src/nats.js';

describe('ensureNats', () => {
  it('starts nats-server from PATH with JetStream when nothing answers, and stops it', async () => {
    const probePort = await getFreePort();
    const port = await getFreePort();
    const server = await ensureNats({ port, probePort });
    try {
      expect(server.started).toBe(true);
      const nc = await connect({ servers: server.url });
      const jsm = await jetstreamManager(nc);
      expect((await jsm.getAccountInfo()).limits).toBeDefined();
      await nc.close();
    } finally {
      await server.stop();
    }
    expect(await isListening('127.0.0.1', port)).toBe(false);
  });

  it('uses the server that already answers on the probed port', async (context) => {
    // The test server found like every other test finds it: NATS_URL, then 127.0.0.1:4222, then
    // testcontainers; without any, findNats fails saying how to start one.
    const nats = await findNats();
    const first = nats.url.split(',')[0]?.trim() ?? nats.url;
    const location = new URL(first.includes('://') ? first : `nats://${first}`);
    const port = location.port === '' ? 4222 : Number(location.port);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(location.hostname)) {
      context.skip(
        `ensureNats probes 127.0.0.1 only, and the test server is at ${location.hostname}:${port}`,
      );
    }
    const server = await ensureNats({ port: await getFreePort(), probePort: port });
    expect(server).toMatchObject({ started: false, url: `nats://127.0.0.1:${port}` });
  });
});
