import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import {
  cleanupNatsPrefix,
  createTestPrefix,
  findNats,
  streamNameFor,
  streamPrefixFor,
} from '../src/index.js';

describe('NATS test prefixes', () => {
  it('derives stream names the way the bus does', () => {
    expect(streamNameFor('tandem', 'task')).toBe('TANDEM_TASK');
    expect(streamNameFor('t_ab12', 'sandbox')).toBe('T_AB12_SANDBOX');
    expect(streamNameFor('acme-prod.eu', 'plan')).toBe('ACME_PROD_EU_PLAN');
    expect(streamPrefixFor('t_ab12')).toBe('T_AB12_');
  });

  it('creates unique prefixes that are valid subject tokens', () => {
    const prefixes = new Set(Array.from({ length: 200 }, () => createTestPrefix()));
    expect(prefixes.size).toBe(200);
    for (const prefix of prefixes) expect(prefix).toMatch(/^t_[a-z0-9]+$/);
  });

  it('deletes only the streams of its prefix', async () => {
    const { url } = await findNats();
    const mine = createTestPrefix();
    const other = createTestPrefix();
    const connection = await connect({ servers: url });
    try {
      const manager = await jetstreamManager(connection);
      for (const [prefix, entity] of [
        [mine, 'task'],
        [mine, 'plan'],
        [other, 'task'],
      ] as const) {
        await manager.streams.add({
          name: streamNameFor(prefix, entity),
          subjects: [`${prefix}.${entity}.>`],
        });
      }

      const deleted = await cleanupNatsPrefix(url, mine);
      expect(deleted.sort()).toEqual([streamNameFor(mine, 'plan'), streamNameFor(mine, 'task')]);

      const left: string[] = [];
      for await (const name of manager.streams.names()) left.push(name);
      expect(left).toContain(streamNameFor(other, 'task'));
      expect(left).not.toContain(streamNameFor(mine, 'task'));
      expect(await cleanupNatsPrefix(url, other)).toEqual([streamNameFor(other, 'task')]);
    } finally {
      await connection.close();
    }
  });

  it('refuses to clean up a prefix that is not a test prefix', async () => {
    const { url } = await findNats();
    await expect(cleanupNatsPrefix(url, 'tandem')).rejects.toThrow(
      /refusing to clean up NATS prefix "tandem"/,
    );
  });
});
