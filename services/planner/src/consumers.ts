import { consumersOf } from '@tandem/bus';
import type { ToolCheckContext, ToolDefinition } from '@tandem/contracts';
import type { Db } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import type { ValidatedStep } from './domain/planning.js';
import type { SourceSecrets } from './domain/source-proof.js';
import type { PatternCache, Requester } from './patterns.js';
import type { PlanningModel } from './planning-loop.js';

/** Dependencies of the planning consumers (task.accepted, task.replan-requested) and the take-overs. */
export interface PlanningDeps {
  db: Db;
  log: Log;
  prefix: string;
  model: PlanningModel;
  registry: ReadonlyMap<string, ToolDefinition>;
  checkContext: ToolCheckContext;
  request: Requester;
  /** Recent learned patterns (optional). */
  patternCache?: PatternCache;
  /** Estimated model cost of running one step (a `run_code` with `spec` costs a code-model call). */
  estimateStepCostUsd: (step: ValidatedStep) => number;
  limits: {
    maxRepairs: number;
    maxSteps: number;
    maxArgumentBytes: number;
    maxDepth: number;
    learningTimeoutMs: number;
  };
  onPlanned?: (
    outcome: 'proposed' | 'failed',
    figures: { repairs: number; ms: number; quality: number | null },
  ) => void;
  /**
   * The planning lease (TANDEM_PLANNING_LEASE_MS): while a task is planned or re-planned its row is
   * renewed every third of it, so a planner's sweep takes over only a task whose planner stopped.
   */
  planningLeaseMs?: number;
}

/** Dependencies of every planner consumer. */
export interface PlannerDeps extends PlanningDeps {
  /** Signing secrets per CloudEvent source (TANDEM_SOURCE_SECRETS). */
  sourceSecrets: SourceSecrets;
  /** Counts a task request handled from NATS (whether it created a task is not known there). */
  onRequested?: () => void;
}

/** Declares one of the planner's consumers (checked against its topology in @tandem/bus). */
export const define = consumersOf<PlannerDeps>('planner');
