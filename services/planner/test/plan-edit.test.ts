import { CloudEventTypes, ErrorCodes, TaskCancelRequestedCloudEvent } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { cancelRefusal, cancelRequest, NOT_STARTED, planEdit } from '../src/domain/plan-edit.js';

const current = { id: 'plan-1', version: 1 };
const editable = { taskId: 't', taskStatus: 'planned' as const, current, runStatus: null, startedStep: null };

function refusal(edit: ReturnType<typeof planEdit>): string {
  if (edit.kind !== 'refused') throw new Error('expected the edit to be refused');
  expect(edit.error.code).toBe(ErrorCodes.TASK_NOT_EDITABLE);
  return edit.error.message;
}

describe('planEdit', () => {
  it('edits on top of the active plan of a planned task whose run, if any, is running and no step started', () => {
    expect(planEdit(editable)).toEqual({ kind: 'editable', current });
    expect(planEdit({ ...editable, runStatus: 'running' })).toEqual({ kind: 'editable', current });
  });

  it('refuses a task with no active plan or one not waiting for approval', () => {
    expect(refusal(planEdit({ ...editable, current: null }))).toBe(
      'task t has no plan awaiting approval (it is planned)',
    );
    expect(refusal(planEdit({ ...editable, taskStatus: 'planning' }))).toBe(
      'task t has no plan awaiting approval (it is planning)',
    );
  });

  it('refuses a task whose run ended or is re-planning', () => {
    expect(refusal(planEdit({ ...editable, runStatus: 'completed' }))).toBe('task t is completed');
    expect(refusal(planEdit({ ...editable, runStatus: 'replanning' }))).toBe('task t is replanning');
  });

  it('refuses once a step started', () => {
    expect(refusal(planEdit({ ...editable, startedStep: { stepKey: 's1', status: 'running' } }))).toBe(
      'step s1 of plan version 1 is running; a plan can only be edited before its steps start',
    );
  });

  it('counts waiting and approved steps as not started', () => {
    expect([...NOT_STARTED].sort()).toEqual(['approved', 'waiting']);
  });
});

describe('cancelRefusal', () => {
  it('lets a task be cancelled while it is planned, running or re-planning', () => {
    expect(cancelRefusal({ taskId: 't', status: 'accepted', runStatus: null })).toBeNull();
    expect(cancelRefusal({ taskId: 't', status: 'planned', runStatus: 'running' })).toBeNull();
    expect(cancelRefusal({ taskId: 't', status: 'planned', runStatus: 'replanning' })).toBeNull();
  });

  it('refuses a task that already ended, naming how', () => {
    expect(cancelRefusal({ taskId: 't', status: 'planned', runStatus: 'completed' })?.message).toBe(
      'task t already ended (completed)',
    );
    expect(cancelRefusal({ taskId: 't', status: 'failed', runStatus: null })?.message).toBe(
      'task t already ended (failed)',
    );
    expect(cancelRefusal({ taskId: 't', status: 'cancelled', runStatus: null })?.code).toBe(
      ErrorCodes.TASK_NOT_EDITABLE,
    );
  });
});

describe('cancelRequest', () => {
  const taskId = '0b6f3c2e-8f43-4a55-9d3c-2f4a1d7e9b10';

  it('is a valid task.cancel-requested CloudEvent naming the token as canceller and the body name as label', () => {
    const event = cancelRequest({
      id: '5a0e8c9f-1b2d-4c3e-8f4a-6b7c8d9e0f1a',
      time: new Date('2026-12-07T10:00:00.000Z'),
      taskId,
      body: { reason: 'not needed', requestedBy: 'Ada' },
      requestedBy: 'token:abc',
    });
    expect(TaskCancelRequestedCloudEvent.parse(event)).toMatchObject({
      type: CloudEventTypes.taskCancelRequested,
      source: '/tandem/planner/http',
      subject: taskId,
      time: '2026-12-07T10:00:00.000Z',
      data: { taskId, reason: 'not needed', requestedBy: 'token:abc', requestedByLabel: 'Ada' },
    });
  });

  it('leaves reason and label out when the body has none', () => {
    const event = cancelRequest({ id: 'x', time: new Date(), taskId, body: {}, requestedBy: 'token:abc' });
    expect(event.data).toEqual({ taskId, requestedBy: 'token:abc' });
  });
});
