import { consumersOf } from '@tandem/bus';
import type { Db } from '@tandem/db';

/** Dependencies of the learning consumers. */
export interface LearningDeps {
  db: Db;
  /** Successes a strategy needs before it is answered to the planner (TANDEM_LEARNING_MIN_SUCCESSES). */
  minSuccesses: number;
  /** Counts a strategy pattern update, by kind of task and the pattern's status. */
  onPattern?: (kind: string, status: string) => void;
  /** Counts a verdict stored as feedback. */
  onFeedback?: (verdict: string) => void;
}

/** Declares one of learning's consumers (checked against its topology in @tandem/bus). */
export const define = consumersOf<LearningDeps>('learning');
