import { randomUUID } from 'node:crypto';
import type { Committed, ConsumerContext } from '@tandem/bus';
import type { TaskOutcomeCloudEvent } from '@tandem/contracts';
import { ensurePattern, lockPattern, updatePattern, type Tx } from '@tandem/db';
import {
  StrategyProvenance,
  nextStrategy,
  outcomeOf,
  strategyContent,
  strategyKey,
  type StrategyUpdate,
} from './domain/strategy.js';
import type { LearningDeps } from './consumers.js';

/**
 * Adds a task's outcome to the `strategy` pattern of its kind, in the consumer's transaction: the
 * pattern is created (a `candidate`) on the kind's first outcome, then its row is locked while it is
 * updated, so parallel outcomes of the same kind all count. Returns the pattern's new state.
 */
export async function updateStrategy(
  tx: Tx,
  event: TaskOutcomeCloudEvent,
  minSuccesses: number,
): Promise<StrategyUpdate> {
  const outcome = outcomeOf(event);
  const key = strategyKey(outcome.kind);
  const empty = StrategyProvenance.parse({});
  await ensurePattern(tx, {
    ...key,
    id: randomUUID(),
    content: strategyContent(outcome.kind, empty),
    source: 'execution',
    provenance: empty,
  });
  const current = await lockPattern(tx, key, StrategyProvenance);
  if (current === null) throw new Error(`strategy pattern for ${key.scope} vanished`);
  const update = nextStrategy(current, outcome, minSuccesses);
  await updatePattern(tx, current.id, update);
  return update;
}

/** After the update (or a redelivery of one already made): the metric and the log line. */
export async function strategyUpdated(
  committed: Committed<StrategyUpdate>,
  event: TaskOutcomeCloudEvent,
  context: ConsumerContext<LearningDeps>,
): Promise<void> {
  const outcome = outcomeOf(event);
  // A redelivery changed nothing: counted as before under `candidate`.
  context.deps.onPattern?.(outcome.kind, committed.duplicate ? 'candidate' : committed.value.status);
  context.log.info(
    { taskId: outcome.taskId, kind: outcome.kind, succeeded: outcome.succeeded },
    'strategy pattern updated',
  );
}
