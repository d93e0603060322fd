import {
  ErrorCodes,
  TandemError,
  type EventData,
  type JsonValue,
  type TaskAccepted,
  type TaskBudget,
  type TaskModelPreference,
  type TaskRequestRef,
  type TaskRequestedData,
} from '@tandem/contracts';

/** Where a task request came from: `source` + `externalId` is its idempotency key. */
export interface TaskSubmission {
  source: string;
  externalId: string;
  request: TaskRequestRef;
  data: TaskRequestedData;
  /** Who submitted it: `token:<ApiToken.id>` over HTTP; absent (null) for a CloudEvent from NATS. */
  submittedBy?: string | null;
}

/** The outcome of accepting a submission. */
export type AcceptResult = { taskId: string; created: boolean };

/** The task row to insert for a submission (status `accepted`), and its `task.accepted` event. */
export interface TaskToStore {
  row: {
    id: string;
    source: string;
    externalId: string;
    requestHash: string;
    agentId: string | null;
    kind: string;
    goal: string;
    input: JsonValue | null;
    budget: TaskBudget | null;
    preferences: TaskModelPreference | null;
    deadline: Date | null;
    submittedBy: string | null;
  };
  accepted: EventData<typeof TaskAccepted>;
}

/**
 * What a new submission stores: the task under the submission's idempotency key with the fingerprint
 * of its data (`requestHash`), kind `general` unless given, and the `task.accepted` event that starts
 * its planning.
 */
export function taskToStore(submission: TaskSubmission, taskId: string, requestHash: string): TaskToStore {
  const { data } = submission;
  const kind = data.kind ?? 'general';
  const agentId = data.agentId ?? null;
  return {
    row: {
      id: taskId,
      source: submission.source,
      externalId: submission.externalId,
      requestHash,
      agentId,
      kind,
      goal: data.goal,
      input: data.input ?? null,
      budget: data.budget ?? null,
      preferences: data.models ?? null,
      deadline: data.deadline === undefined ? null : new Date(data.deadline),
      submittedBy: submission.submittedBy ?? null,
    },
    accepted: { taskId, request: submission.request, goal: data.goal, input: data.input, kind, agentId },
  };
}

/**
 * A submission whose idempotency key is taken: the same data again is the same task (not created);
 * other data under the key is TASK.CONFLICT, which names the existing task. A key that is taken but
 * whose task cannot be read (it vanished meanwhile) is a retryable conflict.
 */
export function existingTask(
  submission: Pick<TaskSubmission, 'source' | 'externalId'>,
  found: { id: string; requestHash: string } | null,
  requestHash: string,
): AcceptResult {
  if (found === null)
    throw new TandemError(ErrorCodes.TASK_CONFLICT, 'the task vanished while it was being accepted', {
      retryable: true,
    });
  if (found.requestHash !== requestHash) {
    throw new TandemError(
      ErrorCodes.TASK_CONFLICT,
      `a different task was already submitted with source "${submission.source}" and id "${submission.externalId}"`,
      { details: { taskId: found.id } },
    );
  }
  return { taskId: found.id, created: false };
}

/** The message id of a CloudEvent submission: its idempotency key, unambiguous for any source and id. */
export function cloudEventMessageId(event: { source: string; id: string }): string {
  return `ce:${JSON.stringify([event.source, event.id])}`;
}
