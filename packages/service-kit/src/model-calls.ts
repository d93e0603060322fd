import { randomUUID } from 'node:crypto';
import type { Db } from '@tandem/db';
import {
  createModelClients,
  type ModelCallRecord,
  type ModelClients,
  type ModelsConfig,
} from '@tandem/models';
import type { ServiceRuntime } from './runtime.js';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Log } from './logger.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An `onCall` for the model clients: exports Prometheus metrics by role and model and stores every call
 * as a ModelCall row. Storing is asynchronous and never fails the call; `flush()` waits for pending rows.
 */
export function createModelCallRecorder(deps: { db: Db; log: Log; registry: Registry }): {
  onCall: (record: ModelCallRecord) => void;
  flush: () => Promise<void>;
} {
  const calls = new Counter({
    name: 'tandem_model_calls_total',
    help: 'Model calls by role, model and outcome',
    labelNames: ['role', 'model', 'outcome'],
    registers: [deps.registry],
  });
  const tokens = new Counter({
    name: 'tandem_model_tokens_total',
    help: 'Model tokens by role, model and kind',
    labelNames: ['role', 'model', 'kind'],
    registers: [deps.registry],
  });
  const latency = new Histogram({
    name: 'tandem_model_call_duration_seconds',
    help: 'Model call latency by role and model',
    labelNames: ['role', 'model'],
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [deps.registry],
  });
  const pending = new Set<Promise<void>>();
  return {
    onCall: (record) => {
      calls.inc({ role: record.role, model: record.model, outcome: record.outcome });
      tokens.inc({ role: record.role, model: record.model, kind: 'prompt' }, record.promptTokens);
      tokens.inc({ role: record.role, model: record.model, kind: 'completion' }, record.completionTokens);
      latency.observe({ role: record.role, model: record.model }, record.latencyMs / 1000);
      const write = deps.db.prisma.modelCall
        .create({
          data: {
            id: UUID.test(record.id) ? record.id : randomUUID(),
            taskId: record.taskId !== null && UUID.test(record.taskId) ? record.taskId : null,
            role: record.role,
            model: record.model,
            endpoint: record.endpoint,
            promptTokens: record.promptTokens,
            completionTokens: record.completionTokens,
            totalTokens: record.totalTokens,
            latencyMs: Math.round(record.latencyMs),
            outcome: record.outcome,
            errorCode: record.errorCode ?? null,
            idempotencyKey: record.idempotencyKey ?? null,
          },
        })
        .then(
          () => undefined,
          (error: unknown) => {
            deps.log.error({ err: error, role: record.role }, 'could not store a model call record');
          },
        );
      pending.add(write);
      void write.finally(() => pending.delete(write));
    },
    flush: async () => {
      await Promise.all([...pending]);
    },
  };
}

/**
 * The model clients of a service, every call stored and exported as metrics through its runtime;
 * pending call records are flushed when the runtime stops.
 */
export function createRecordedModelClients(runtime: ServiceRuntime, config: ModelsConfig): ModelClients {
  const recorder = createModelCallRecorder({
    db: runtime.db,
    log: runtime.log,
    registry: runtime.metrics.registry,
  });
  runtime.onStop(recorder.flush);
  return createModelClients(config, { onCall: recorder.onCall });
}
