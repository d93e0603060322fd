import type { Log } from '@tandem/service-kit';
import type { ExecutorDeps } from '../deps.js';
import type { OutboundTool } from '../domain/advance.js';
import type { StepState } from '../domain/progress.js';
import type { RunState } from '../domain/run-state.js';

/** How the message that moved the task on is being delivered. */
export interface Delivery {
  /** The last allowed delivery: a retryable failure now fails the step instead of coming back. */
  lastDelivery: boolean;
}

/**
 * Runs one step that leaves the database (an HTTP call; the code model and the sandbox): claims it,
 * does the work outside any transaction, stores what came of it. Resolves true when the task can move on
 * at once, false when it must wait (another replica holds the step, or a sandbox result is to come).
 * Throws a TandemError that is not retryable for an expected tool failure: the step then fails.
 */
export interface StepRunner {
  tool: OutboundTool;
  start(deps: ExecutorDeps, state: RunState, step: StepState, log: Log, delivery: Delivery): Promise<boolean>;
}
