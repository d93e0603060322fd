import type { TaskOutcomeCloudEvent } from '@tandem/contracts';
import { z } from 'zod';

/** The learned state behind a `strategy` pattern for one kind of task (stored as the pattern's provenance). */
export const StrategyProvenance = z.object({
  events: z
    .array(z.object({ id: z.string(), type: z.string(), taskId: z.string(), at: z.string() }))
    .default([]),
  sequences: z
    .record(z.string(), z.object({ successes: z.number().int(), failures: z.number().int() }))
    .default({}),
  recentErrors: z.array(z.object({ code: z.string(), message: z.string() })).default([]),
});
/** The learned state behind a `strategy` pattern. */
export type StrategyProvenance = z.infer<typeof StrategyProvenance>;

/** One task outcome as learning sees it. */
export interface Outcome {
  eventId: string;
  eventType: string;
  taskId: string;
  kind: string;
  succeeded: boolean;
  tools: string[];
  error: { code: string; message: string } | null;
  at: string;
}

const MAX_EVENTS = 100;
const MAX_ERRORS = 5;

/** Adds one outcome to the provenance (the newest events are kept, the oldest dropped past 100). */
export function applyOutcome(previous: StrategyProvenance, outcome: Outcome): StrategyProvenance {
  const sequence = outcome.tools.length > 0 ? outcome.tools.join(' -> ') : '(no plan)';
  const counts = previous.sequences[sequence] ?? { successes: 0, failures: 0 };
  return {
    events: [
      ...previous.events,
      { id: outcome.eventId, type: outcome.eventType, taskId: outcome.taskId, at: outcome.at },
    ].slice(-MAX_EVENTS),
    sequences: {
      ...previous.sequences,
      [sequence]: outcome.succeeded
        ? { ...counts, successes: counts.successes + 1 }
        : { ...counts, failures: counts.failures + 1 },
    },
    recentErrors: outcome.error
      ? [
          ...previous.recentErrors,
          { code: outcome.error.code, message: outcome.error.message.slice(0, 200) },
        ].slice(-MAX_ERRORS)
      : previous.recentErrors,
  };
}

/** Laplace-smoothed success rate: a pattern with one success is not yet certain. */
export function confidence(successes: number, failures: number): number {
  return (successes + 1) / (successes + failures + 2);
}

/** The text the planner reads: which plan shapes worked for this kind of task and what went wrong. */
export function strategyContent(kind: string, provenance: StrategyProvenance): string {
  const ranked = Object.entries(provenance.sequences).sort(
    ([, a], [, b]) =>
      confidence(b.successes, b.failures) - confidence(a.successes, a.failures) || b.successes - a.successes,
  );
  const parts: string[] = [];
  const best = ranked.find(([, counts]) => counts.successes > 0);
  if (best)
    parts.push(
      `For "${kind}" tasks, plans shaped ${best[0]} succeeded ${best[1].successes} of ${best[1].successes + best[1].failures} times.`,
    );
  const worst = ranked
    .filter(([, counts]) => counts.failures > counts.successes)
    .map(([sequence]) => sequence);
  if (worst.length > 0) parts.push(`Plans shaped ${worst.join('; ')} failed more often than not.`);
  const lastError = provenance.recentErrors[provenance.recentErrors.length - 1];
  if (lastError) parts.push(`A recent failure: ${lastError.code}: ${lastError.message}`);
  return parts.join(' ') || `No outcome of "${kind}" tasks yet.`;
}

/** The pattern a kind of task's outcomes are kept in: one `strategy` pattern per kind. */
export function strategyKey(kind: string): { type: 'strategy'; scope: string; signature: string } {
  return { type: 'strategy', scope: `kind:${kind}`, signature: 'plan-shape' };
}

/** A task.completed or task.failed event as learning sees it. */
export function outcomeOf(event: TaskOutcomeCloudEvent): Outcome {
  const { data } = event;
  return {
    eventId: event.id,
    eventType: event.type,
    taskId: data.taskId,
    kind: data.kind ?? 'general',
    succeeded: data.status === 'completed',
    tools: data.tools ?? [],
    error: data.status === 'failed' ? { code: data.error.code, message: data.error.message } : null,
    at: event.time,
  };
}

/** A strategy pattern's new state after one more outcome. */
export interface StrategyUpdate {
  successCount: number;
  failureCount: number;
  confidence: number;
  provenance: StrategyProvenance;
  content: string;
  /** `active` (answered to planners) once it has `minSuccesses` successes, else `candidate`. */
  status: 'active' | 'candidate';
}

/** Adds one outcome to a strategy pattern's counts and learned state. */
export function nextStrategy(
  current: { successCount: number; failureCount: number; provenance: StrategyProvenance },
  outcome: Outcome,
  minSuccesses: number,
): StrategyUpdate {
  const provenance = applyOutcome(current.provenance, outcome);
  const successCount = current.successCount + (outcome.succeeded ? 1 : 0);
  const failureCount = current.failureCount + (outcome.succeeded ? 0 : 1);
  return {
    successCount,
    failureCount,
    confidence: confidence(successCount, failureCount),
    provenance,
    content: strategyContent(outcome.kind, provenance),
    status: successCount >= minSuccesses ? 'active' : 'candidate',
  };
}
