import { execFileSync, spawn } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { getFreePort } from '@tandem/testing';
import pg from 'pg';

/** Where Debian's Postgres 15 keeps initdb and pg_ctl. */
export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';

/** A Postgres cluster of the suite's own (never the machine's shared one). */
export interface PostgresCluster {
  /** An admin URL (user postgres, database postgres) for creating the scenario's database. */
  adminUrl: string;
  port: number;
  /** `pg_ctl restart -m immediate`: every backend is killed without a checkpoint (a crash), then it starts. */
  restartImmediate(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs a Postgres program as the `postgres` user when this process is root (initdb refuses root). */
function run(program: string, args: string[], cwd: string): Promise<string> {
  const asRoot = userInfo().uid === 0;
  const command = asRoot ? 'runuser' : join(POSTGRES_BIN, program);
  const argv = asRoot ? ['-u', 'postgres', '--', join(POSTGRES_BIN, program), ...args] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${program} ${args.join(' ')} exited ${code}:\n${output}`)),
    );
  });
}

async function waitAccepting(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  throw new Error(`the suite's Postgres did not accept connections: ${String(last)}`);
}

/**
 * initdb into a temporary directory and start it on a free loopback port (socket in the same directory).
 * fsync is off: the scenarios crash processes, not the machine, and the data directory is thrown away.
 */
export async function startPostgresCluster(
  options: { maxConnections?: number } = {},
): Promise<PostgresCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-faults-pg-'));
  if (userInfo().uid === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    await chown(dir, uid, uid);
  }
  const dataDir = join(dir, 'data');
  const port = await getFreePort();
  await run('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], dir);
  const settings = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses='127.0.0.1'",
    `-c max_connections=${options.maxConnections ?? 200}`,
    '-c fsync=off',
    '-c shared_buffers=64MB',
  ].join(' ');
  const logFile = join(dir, 'postgres.log');
  await run('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', settings, '-w', 'start'], dir);
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await waitAccepting(adminUrl, 20_000);
  return {
    adminUrl,
    port,
    restartImmediate: async () => {
      await run(
        'pg_ctl',
        ['-D', dataDir, '-l', logFile, '-o', settings, '-m', 'immediate', '-w', 'restart'],
        dir,
      );
      await waitAccepting(adminUrl, 30_000);
    },
    stop: async () => {
      await run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], dir).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
