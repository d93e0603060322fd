import { migrate } from '@tandem/db';
import { createLogger, createServiceRuntime, parseConfig, type ServiceRuntime } from '@tandem/service-kit';
import {
  cleanupNatsPrefix,
  createTestDatabase,
  createTestPrefix,
  findNats,
  type TestDatabase,
} from '@tandem/testing';
import { createExecutor } from '../../src/app.js';
import { ExecutorConfig } from '../../src/config.js';
import { createSecretStore } from '../../src/secrets.js';
import { seedTask, type SeedOptions, type SeedStep, type SeededTask } from './seed.js';

export type { SeedOptions, SeedStep, SeededTask } from './seed.js';

/** The executor running in-process on its own test database and subject prefix. */
export interface ExecutorHarness {
  prefix: string;
  database: TestDatabase;
  runtime: ServiceRuntime;
  /** Stores a task, its active plan with the given steps and its running TaskRun; returns the ids. */
  seedTask(steps: SeedStep[], options?: SeedOptions): Promise<SeededTask>;
  close(): Promise<void>;
}

/** Starts the executor with the given settings; the code model and HTTP must not be called. */
export async function createExecutorHarness(env: Record<string, string> = {}): Promise<ExecutorHarness> {
  const natsUrl = (await findNats()).url;
  const prefix = createTestPrefix();
  const database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  const config = parseConfig(ExecutorConfig, {
    DATABASE_URL: database.url,
    NATS_URL: natsUrl,
    TANDEM_SUBJECT_PREFIX: prefix,
    TANDEM_MAX_DELIVER: '3',
    TANDEM_DB_POOL_MAX: '8',
    TANDEM_DEADLINE_SWEEP_MS: '200',
    ...env,
  });
  const log = createLogger({ service: 'executor', level: process.env['LOG_LEVEL'] ?? 'silent' });
  let runtime: ServiceRuntime;
  try {
    runtime = await createServiceRuntime({ service: 'executor', config, log });
  } catch (error) {
    await database.drop();
    throw error;
  }
  const close = async (): Promise<void> => {
    await runtime.stop();
    await cleanupNatsPrefix(natsUrl, prefix);
    await database.drop();
  };
  try {
    await createExecutor({
      runtime,
      config,
      codeModel: { complete: () => Promise.reject(new Error('the code model must not be called')) },
      httpClient: { request: () => Promise.reject(new Error('http must not be called')) },
      secrets: createSecretStore(new Map()),
    });
    await runtime.listen(0, '127.0.0.1');
  } catch (error) {
    await close();
    throw error;
  }
  return {
    prefix,
    database,
    runtime,
    seedTask: (steps, options) => seedTask(runtime.db, steps, options),
    close,
  };
}
