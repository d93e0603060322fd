import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/** A PGlite Postgres reachable over the wire protocol on 127.0.0.1. */
export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts PGlite (one single-threaded Postgres in this process) and serves it on a local port, so the
 * services connect with plain `pg`. Every service's pool must stay below `maxConnections` in total.
 */
export async function startEmbeddedPostgres(options: { dataDir: string; port: number; maxConnections: number }): Promise<EmbeddedPostgres> {
  await mkdir(options.dataDir, { recursive: true });
  const db = await PGlite.create(options.dataDir);
  const server = new PGLiteSocketServer({ db, port: options.port, host: '127.0.0.1', maxConnections: options.maxConnections });
  await server.start();
  return {
    url: `postgresql://postgres@127.0.0.1:${options.port}/postgres?sslmode=disable`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}
