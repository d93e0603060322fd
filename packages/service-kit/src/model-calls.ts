import { randomUUID } from 'node:crypto';
import { modelCallOutcomesSince, recordModelCall, type Db } from '@tandem/db';
import {
  createModelSelector,
  type ModelCallRecord,
  type ModelRole,
  type ModelSelector,
  type SelectorConfig,
} from '@tandem/models';
import type { ServiceRuntime } from './runtime.js';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Log } from './logger.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Outcomes per role and candidate, the selector's "learned success per model". */
export interface SuccessRates {
  get(role: ModelRole, candidateId: string): { ok: number; failed: number } | undefined;
  add(role: ModelRole, candidateId: string, ok: boolean, count?: number): void;
}

function createSuccessRates(): SuccessRates {
  const rates = new Map<string, { ok: number; failed: number }>();
  return {
    get: (role, candidateId) => rates.get(`${role}\u0000${candidateId}`),
    add: (role, candidateId, ok, count = 1) => {
      const key = `${role}\u0000${candidateId}`;
      const current = rates.get(key) ?? { ok: 0, failed: 0 };
      rates.set(
        key,
        ok ? { ...current, ok: current.ok + count } : { ...current, failed: current.failed + count },
      );
    },
  };
}

/**
 * An `onCall` for the model selector: exports Prometheus metrics by role and model and stores every call
 * (task, role, model, candidate, endpoint, tokens, cost, latency, outcome, fallback) as a ModelCall row.
 * Storing is asynchronous and never fails the call; `flush()` waits for pending rows.
 */
export function createModelCallRecorder(deps: {
  db: Db;
  log: Log;
  registry: Registry;
  rates?: SuccessRates;
}): {
  onCall: (record: ModelCallRecord) => void;
  flush: () => Promise<void>;
} {
  const calls = new Counter({
    name: 'tandem_model_calls_total',
    help: 'Model calls by role, model, outcome and whether the call was a fallback',
    labelNames: ['role', 'model', 'outcome', 'fallback'],
    registers: [deps.registry],
  });
  const tokens = new Counter({
    name: 'tandem_model_tokens_total',
    help: 'Model tokens by role, model and kind',
    labelNames: ['role', 'model', 'kind'],
    registers: [deps.registry],
  });
  const cost = new Counter({
    name: 'tandem_model_cost_usd_total',
    help: 'Model cost in USD by role and model (from the configured prices)',
    labelNames: ['role', 'model'],
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
      const labels = { role: record.role, model: record.model };
      calls.inc({ ...labels, outcome: record.outcome, fallback: String(record.fallback) });
      tokens.inc({ ...labels, kind: 'prompt' }, record.promptTokens);
      tokens.inc({ ...labels, kind: 'completion' }, record.completionTokens);
      cost.inc(labels, record.costUsd);
      latency.observe(labels, record.latencyMs / 1000);
      deps.rates?.add(record.role, record.candidateId, record.outcome === 'ok');
      // One insert per call, off the call's path, its own commit.
      const write = recordModelCall(deps.db, {
        id: UUID.test(record.id) ? record.id : randomUUID(),
        taskId: record.taskId !== null && UUID.test(record.taskId) ? record.taskId : null,
        role: record.role,
        model: record.model,
        endpoint: record.endpoint,
        candidateId: record.candidateId,
        tier: record.tier,
        attempt: record.attempt,
        fallback: record.fallback,
        promptTokens: record.promptTokens,
        completionTokens: record.completionTokens,
        totalTokens: record.totalTokens,
        costUsd: record.costUsd,
        latencyMs: Math.round(record.latencyMs),
        outcome: record.outcome,
        errorCode: record.errorCode ?? null,
        idempotencyKey: record.idempotencyKey ?? null,
      }).then(
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
 * The model selector of a service: every call stored and exported as metrics through its runtime, learned
 * success per candidate seeded from the last day of stored calls and kept up to date in memory; pending
 * call records are flushed when the runtime stops.
 */
export async function createRecordedModelSelector(
  runtime: ServiceRuntime,
  config: SelectorConfig,
): Promise<ModelSelector> {
  const rates = createSuccessRates();
  try {
    const since = new Date(Date.now() - 24 * 60 * 60 * 1000);
    for (const row of await modelCallOutcomesSince(runtime.db, since))
      rates.add(row.role, row.candidateId, row.outcome === 'ok', row.count);
  } catch (error) {
    runtime.log.warn({ err: error }, 'could not read past model calls; learned success starts empty');
  }
  const recorder = createModelCallRecorder({
    db: runtime.db,
    log: runtime.log,
    registry: runtime.metrics.registry,
    rates,
  });
  runtime.onStop(recorder.flush);
  return createModelSelector(config, { onCall: recorder.onCall, successRate: rates.get });
}
