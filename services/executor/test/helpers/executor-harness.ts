import { randomUUID } from 'node:crypto';
import { HTTP_TASK_SOURCE, argumentsHash, toolRegistry, type JsonValue } from '@tandem/contracts';
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

/** One planned step as the planner and the approval service would have stored it. */
export interface SeedStep {
  tool: string;
  arguments: Record<string, JsonValue>;
  /** The StepRun status (`waiting`, `approved`, `running`, ...). */
  status: string;
  /** How long ago the StepRun row last changed (default: now). */
  updatedAgoMs?: number;
}

/** The executor running in-process on its own test database and subject prefix. */
export interface ExecutorHarness {
  prefix: string;
  database: TestDatabase;
  runtime: ServiceRuntime;
  /** Stores a task, its active plan with the given steps and its running TaskRun; returns the ids. */
  seedTask(steps: SeedStep[], options?: SeedOptions): Promise<SeededTask>;
  close(): Promise<void>;
}

/** How a task is seeded. */
export interface SeedOptions {
  /** The TaskRun status (default `running`). */
  runStatus?: string;
  /** false: no TaskRun and no StepRun rows, as before the executor saw `plan.proposed`. */
  withRun?: boolean;
  /** The submitter's CloudEvent `source` and `id` (default: an HTTP task). */
  source?: string;
  externalId?: string;
  /** The task's id (default: a new one). */
  taskId?: string;
  /** The planner's Task.status (default `planned`). */
  taskStatus?: string;
}

/** A seeded task's ids. */
export interface SeededTask {
  taskId: string;
  planId: string;
  stepIds: string[];
  source: string;
  externalId: string;
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
  const { prisma } = runtime.db;
  return {
    prefix,
    database,
    runtime,
    async seedTask(steps, options = {}) {
      const taskId = options.taskId ?? randomUUID();
      const planId = randomUUID();
      const source = options.source ?? HTTP_TASK_SOURCE;
      const externalId = options.externalId ?? `auto:${taskId}`;
      await prisma.task.create({
        data: {
          id: taskId,
          source,
          externalId,
          requestHash: 'test',
          goal: 'a test task',
          status: options.taskStatus ?? 'planned',
          correlationId: taskId,
        },
      });
      await prisma.plan.create({ data: { id: planId, taskId, version: 1 } });
      const stepIds: string[] = [];
      for (const [index, step] of steps.entries()) {
        const stepId = randomUUID();
        stepIds.push(stepId);
        await prisma.planStep.create({
          data: {
            id: stepId,
            planId,
            stepKey: `s${index + 1}`,
            index,
            dependsOn: [],
            tool: step.tool,
            arguments: step.arguments,
            riskClass: toolRegistry.get(step.tool)?.risk ?? 'read',
            idempotencyKey: `${planId}:${index}`,
          },
        });
        await prisma.approvalRequest.create({
          data: {
            id: randomUUID(),
            taskId,
            planId,
            stepId,
            tool: step.tool,
            mode: 'auto',
            status: step.status === 'waiting' ? 'pending' : 'approved',
            argumentsHash: argumentsHash(step.arguments),
          },
        });
        const running = step.status === 'running' || step.status === 'generating';
        if (options.withRun === false) continue;
        await prisma.stepRun.create({
          data: {
            stepId,
            taskId,
            status: step.status,
            ...(running ? { attempts: 1, startedAt: new Date() } : {}),
          },
        });
        if (step.updatedAgoMs !== undefined) {
          await prisma.$executeRaw`UPDATE "StepRun" SET "updatedAt" = (now() AT TIME ZONE 'UTC') - make_interval(secs => ${step.updatedAgoMs / 1000}) WHERE "stepId" = ${stepId}::uuid`;
        }
      }
      if (options.withRun !== false)
        await prisma.taskRun.create({ data: { taskId, planId, status: options.runStatus ?? 'running' } });
      return { taskId, planId, stepIds, source, externalId };
    },
    close,
  };
}
