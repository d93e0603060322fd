import type { TaskOutcomeCloudEvent } from '@tandem/contracts';

/** A task's outcome as stored beside the figures of the plan version that ran. */
export interface PlanOutcomeRecord {
  taskId: string;
  /** The version that ran; null when the event does not say (the newest then). */
  planVersion: number | null;
  outcome: 'completed' | 'failed' | 'cancelled';
  at: Date;
}

/** What a task.completed / failed / cancelled event stores beside its plan's quality score. */
export function planOutcomeOf(event: TaskOutcomeCloudEvent): PlanOutcomeRecord {
  return {
    taskId: event.data.taskId,
    planVersion: event.data.planVersion ?? null,
    outcome: event.data.status,
    at: new Date(event.time),
  };
}
