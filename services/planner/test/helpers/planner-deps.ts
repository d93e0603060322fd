import { DEFAULT_TOOL_CALL_LIMITS, toolRegistry } from '@tandem/contracts';
import type { Db } from '@tandem/db';
import { createLogger } from '@tandem/service-kit';
import type { PlannerDeps } from '../../src/consumers.js';

/**
 * The planner consumers' dependencies for tests that drive a consumer without NATS: a model and a
 * learning service that must not be called unless the test gives its own.
 */
export function plannerDeps(db: Db, overrides: Partial<PlannerDeps> = {}): PlannerDeps {
  return {
    db,
    log: createLogger({ service: 'planner-test', level: 'silent' }),
    prefix: 'test',
    model: {
      complete: async () => {
        throw new Error('the planning model was not expected to be called');
      },
    },
    registry: toolRegistry,
    checkContext: {
      http: { allowHosts: [], allowHttp: false },
      runCode: { languages: ['javascript', 'python'], maxCodeChars: 100_000 },
    },
    request: async () => {
      throw new Error('no learning service in this test');
    },
    estimateStepCostUsd: () => 0,
    limits: {
      maxRepairs: 2,
      maxSteps: 20,
      maxArgumentBytes: DEFAULT_TOOL_CALL_LIMITS.maxArgumentBytes,
      maxDepth: DEFAULT_TOOL_CALL_LIMITS.maxDepth,
      learningTimeoutMs: 10,
    },
    sourceSecrets: new Map(),
    ...overrides,
  };
}
