import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { getFreePort } from '@tandem/testing';
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

  it('uses the server that already answers on the probed port', async () => {
    const server = await ensureNats({ port: await getFreePort() });
    expect(server).toMatchObject({ started: false, url: 'nats://127.0.0.1:4222' });
  });
});
