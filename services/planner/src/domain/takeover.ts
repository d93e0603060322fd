import { taskRequestRef, type EventData, type JsonValue, type TaskAccepted } from '@tandem/contracts';

// The take-over of stale planning (issue 12): how much a sweep may claim, which tasks count as stale,
// and the task.accepted a taken-over task is planned from.

/** What one sweep claims: room left under the planner's concurrency, and whether `accepted` counts. */
export interface SweepPlan {
  /** How many tasks to claim (0: skip the sweep). */
  limit: number;
  /**
   * Whether a task still `accepted` past its lease is stale too: only while the planning consumer has
   * nothing undelivered, so a task.accepted merely queued behind others is not taken away from it.
   */
  withAccepted: boolean;
}

/** How many tasks a sweep may take over while `inFlight` take-overs run. */
export function takeoverRoom(concurrency: number, inFlight: number): number {
  return Math.max(0, concurrency - inFlight);
}

/** The claim of a sweep, given the room left and the planning consumer's undelivered messages. */
export function sweepPlan(room: number, backlog: number): SweepPlan {
  return { limit: room, withAccepted: backlog === 0 };
}

/** The task.accepted a taken-over task is planned from, rebuilt from its stored row. */
export function acceptedFromStoredTask(task: {
  id: string;
  source: string;
  externalId: string;
  goal: string;
  input: JsonValue | null;
  kind: string;
  agentId: string | null;
}): EventData<typeof TaskAccepted> {
  return {
    taskId: task.id,
    request: taskRequestRef(task),
    goal: task.goal,
    ...(task.input === null ? {} : { input: task.input }),
    kind: task.kind,
    agentId: task.agentId,
  };
}
