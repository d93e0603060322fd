import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

/**
 * The stream-name rule shared with @tandem/bus: `<PREFIX>_<ENTITY>`, both upper-cased with every
 * character outside [A-Z0-9_] replaced by `_` (prefix `tandem`, entity `task` -> `TANDEM_TASK`).
 * Renaming streams breaks messages in flight: change this rule only together with the bus.
 */
export function streamNameFor(prefix: string, entity: string): string {
  return `${streamToken(prefix)}_${streamToken(entity)}`;
}

/** The start every stream name of `prefix` shares (`t_ab12` -> `T_AB12_`). */
export function streamPrefixFor(prefix: string): string {
  return `${streamToken(prefix)}_`;
}

function streamToken(value: string): string {
  return value.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

const TEST_PREFIX = /^(t|test)_[a-z0-9_]+$/;

/** A unique subject prefix for one test file, `t_<12 lowercase hex>`: a valid subject token and stream-name part. */
export function createTestPrefix(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

/**
 * Deletes every JetStream stream of a test prefix (names starting with `streamPrefixFor(prefix)`,
 * plus KV and object-store buckets named that way) and returns the deleted names. Refuses prefixes
 * not shaped like a test prefix (`t_...` or `test_...`) so a deployment's streams are never touched.
 */
export async function cleanupNatsPrefix(natsUrl: string, prefix: string): Promise<string[]> {
  if (!TEST_PREFIX.test(prefix)) {
    throw new Error(
      `refusing to clean up NATS prefix "${prefix}": only test prefixes (t_... or test_..., lowercase) are cleaned up`,
    );
  }
  const start = streamPrefixFor(prefix);
  const owned = (name: string): boolean =>
    name.startsWith(start) || name.startsWith(`KV_${start}`) || name.startsWith(`OBJ_${start}`);
  const connection = await connect({ servers: natsUrl.split(','), timeout: 5000 });
  try {
    const manager = await jetstreamManager(connection);
    const names: string[] = [];
    for await (const name of manager.streams.names()) {
      if (owned(name)) names.push(name);
    }
    for (const name of names) await manager.streams.delete(name);
    return names;
  } finally {
    await connection.close();
  }
}
