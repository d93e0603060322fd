import { CloudEventTypes, TaskOutcomeCloudEvent } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { planOutcomeOf } from '../src/domain/outcome.js';

const taskId = '0b6f3c2e-8f43-4a55-9d3c-2f4a1d7e9b10';

function outcomeEvent(type: string, data: Record<string, unknown>) {
  return TaskOutcomeCloudEvent.parse({
    specversion: '1.0',
    id: 'event-1',
    source: '/tandem/executor',
    type,
    time: '2026-12-07T10:00:00.000+01:00',
    datacontenttype: 'application/json',
    subject: taskId,
    data: { taskId, request: { source: 'urn:acme', id: 'e1' }, ...data },
  });
}

describe('planOutcomeOf', () => {
  it('stores the outcome, the instant and the plan version the event names', () => {
    const event = outcomeEvent(CloudEventTypes.taskCompleted, {
      status: 'completed',
      planVersion: 2,
      result: { answer: '5', steps: [] },
    });
    expect(planOutcomeOf(event)).toEqual({
      taskId,
      planVersion: 2,
      outcome: 'completed',
      at: new Date('2026-12-07T09:00:00.000Z'),
    });
  });

  it('names no version when the event does not (the newest plan then)', () => {
    const event = outcomeEvent(CloudEventTypes.taskCancelled, { status: 'cancelled', reason: null });
    expect(planOutcomeOf(event)).toMatchObject({ planVersion: null, outcome: 'cancelled' });
  });
});
