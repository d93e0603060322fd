import type { JsonValue } from '@tandem/contracts';
import type { Tx } from '@tandem/db';
import type { ExecutorDeps } from '../deps.js';
import type { StepState } from '../domain/progress.js';
import type { RunState } from '../domain/run-state.js';

/** What an inline tool's runner gets: the pass's transaction (holding the plan lock), the deps and the state. */
export interface InlineContext {
  tx: Tx;
  deps: ExecutorDeps;
  /** The run state, with the steps completed earlier in the same pass. */
  state: RunState;
}

/**
 * Runs one inline step (a read or write of Tandem's own database) in the pass's transaction and returns
 * its value; throws a TandemError (or a ZodError for malformed arguments) for a tool failure.
 */
export interface InlineRunner {
  tool: string;
  run(context: InlineContext, step: StepState): Promise<JsonValue>;
}
