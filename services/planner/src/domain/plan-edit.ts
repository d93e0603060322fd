import { CloudEventTypes, ErrorCodes, TandemError, type CancelTaskBody } from '@tandem/contracts';
import type { TaskState } from './planning-decisions.js';

// Whether a plan may still be edited and a task still cancelled over HTTP, and the cancel request a
// cancel sends.

/** Step states in which a step has not started: a plan whose steps are all here may still be edited. */
export const NOT_STARTED: readonly string[] = ['waiting', 'approved'];

/** Whether a plan edit goes ahead: on top of the current version, or refused (TASK.NOT_EDITABLE). */
export type PlanEdit =
  { kind: 'editable'; current: { id: string; version: number } } | { kind: 'refused'; error: TandemError };

/**
 * Whether a task's plan may be edited: the task must wait for approval of an active plan (`planned`),
 * its run (if any) must still be running, and none of the plan's steps may have started.
 */
export function planEdit(state: {
  taskId: string;
  taskStatus: TaskState;
  current: { id: string; version: number } | null;
  runStatus: string | null;
  startedStep: { stepKey: string; status: string } | null;
}): PlanEdit {
  const { taskId, current } = state;
  const refused = (message: string): PlanEdit => ({
    kind: 'refused',
    error: new TandemError(ErrorCodes.TASK_NOT_EDITABLE, message),
  });
  if (current === null || state.taskStatus !== 'planned')
    return refused(`task ${taskId} has no plan awaiting approval (it is ${state.taskStatus})`);
  if (state.runStatus !== null && state.runStatus !== 'running')
    return refused(`task ${taskId} is ${state.runStatus}`);
  if (state.startedStep !== null)
    return refused(
      `step ${state.startedStep.stepKey} of plan version ${current.version} is ${state.startedStep.status}; a plan can only be edited before its steps start`,
    );
  return { kind: 'editable', current };
}

/** Why a task may not be cancelled (it already ended: TASK.NOT_EDITABLE), or null when it may. */
export function cancelRefusal(state: {
  taskId: string;
  status: TaskState;
  runStatus: string | null;
}): TandemError | null {
  const finished =
    state.runStatus !== null && state.runStatus !== 'running' && state.runStatus !== 'replanning';
  if (finished || state.status === 'failed' || state.status === 'cancelled')
    return new TandemError(
      ErrorCodes.TASK_NOT_EDITABLE,
      `task ${state.taskId} already ended (${state.runStatus ?? state.status})`,
    );
  return null;
}

/**
 * The `task.cancel-requested` CloudEvent of an HTTP cancel. The canceller is the token (`requestedBy`);
 * a name the body gives travels only as a label.
 */
export function cancelRequest(input: {
  id: string;
  time: Date;
  taskId: string;
  body: CancelTaskBody;
  requestedBy: string;
}) {
  return {
    specversion: '1.0',
    id: input.id,
    source: '/tandem/planner/http',
    type: CloudEventTypes.taskCancelRequested,
    time: input.time.toISOString(),
    datacontenttype: 'application/json',
    subject: input.taskId,
    data: {
      taskId: input.taskId,
      ...(input.body.reason === undefined ? {} : { reason: input.body.reason }),
      requestedBy: input.requestedBy,
      ...(input.body.requestedBy === undefined ? {} : { requestedByLabel: input.body.requestedBy }),
    },
  };
}
