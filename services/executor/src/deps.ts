import type { JsonValue, SandboxLimits, TaskBudget } from '@tandem/contracts';
import type { Db, TaskModelUse } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import type { CodePattern } from './domain/progress.js';
import type { WorkspaceLimits } from './domain/workspace.js';

/** What the executor needs of the code model. */
export interface CodeModel {
  complete(request: {
    taskId: string;
    messages: Array<{ role: 'system' | 'user'; content: string }>;
    idempotencyKey: string;
    preference: { tier?: string; model?: string } | undefined;
    budget: TaskBudget | undefined;
    spent: TaskModelUse;
  }): Promise<{ content: string | null }>;
}

/** Runs an `http_request` step's (resolved) arguments; throws TandemError for a refused or failed request. */
export interface HttpRunner {
  run(input: { stepId: string; arguments: Record<string, JsonValue> }): Promise<JsonValue>;
}

/** The executor's dependencies: what its consumers, runners and sweeps are given. */
export interface ExecutorDeps {
  db: Db;
  log: Log;
  prefix: string;
  codeModel: CodeModel;
  http: HttpRunner;
  /** Learned code and error-recovery patterns for a language (empty when learning has none or is slow). */
  codePatterns: (language: string) => Promise<CodePattern[]>;
  sandboxLimits: SandboxLimits;
  workspace: WorkspaceLimits;
  /**
   * The step lease: a `generating` claim not renewed for this long (its replica stopped) is taken over;
   * a live replica renews it every third of it.
   */
  claimStaleMs: number;
  /** Sandbox runs of one `run_code` step: the first plus this many fixes by the code model. */
  maxFixAttempts: number;
  /** New plans the executor may ask for after a step failed for good. */
  maxReplans: number;
  /** Largest program the code model may write (the same cap as `run_code` code in a plan). */
  maxCodeChars: number;
  /** How long a cancel request for a task not stored yet is kept. */
  earlyCancelTtlMs: number;
  onTaskFinished?: (status: 'completed' | 'failed' | 'cancelled', kind: string) => void;
}
