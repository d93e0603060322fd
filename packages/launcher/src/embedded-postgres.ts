import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGliteWireServer } from './pglite-server.js';

/** A PGlite Postgres reachable over the wire protocol on 127.0.0.1. */
export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts PGlite (one single-threaded Postgres in this process) and serves it on a local port, so the
 * services connect with plain `pg`. See PGliteWireServer for why not pglite-socket's server.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
}): Promise<EmbeddedPostgres> {
  await mkdir(options.dataDir, { recursive: true });
  const db = await PGlite.create(options.dataDir);
  const server = new PGliteWireServer(db);
  const port = await server.listen(options.port);
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
    stop: async () => {
      await server.close();
      await db.close();
    },
  };
}
