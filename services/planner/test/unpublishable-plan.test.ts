import { randomUUID } from 'node:crypto';
import { PlanFailed, PlanProposed, createEnvelope } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { unpublishablePlan } from '../src/app.js';

describe('unpublishablePlan', () => {
  it('turns an unpublishable plan.proposed into plan.failed for its task with BUS.OUTBOX_UNPUBLISHABLE', () => {
    const taskId = randomUUID();
    const request = { source: 'urn:test', id: 'req-1' };
    const plan = createEnvelope(
      PlanProposed,
      {
        taskId,
        planId: randomUUID(),
        version: 1,
        request,
        kind: 'general',
        agentId: 'agent-1',
        steps: [
          {
            stepId: randomUUID(),
            key: 'write',
            index: 0,
            tool: 'write_file',
            arguments: { path: 'a.txt', content: 'a'.repeat(240_000) },
            riskClass: 'write',
            sideEffects: true,
            dependsOn: [],
          },
        ],
      },
      { correlationId: taskId },
    );
    const [failed, ...more] = unpublishablePlan('tandem', {
      id: plan.id,
      publisher: 'planner',
      subject: 'tandem.plan.proposed.v1',
      payload: JSON.parse(JSON.stringify(plan)),
      headers: {},
      error: { code: 'BUS.PUBLISH_REFUSED', message: 'permissions violation' },
    });
    expect(more).toEqual([]);
    expect(failed?.subject).toBe('tandem.plan.failed.v1');
    const parsed = PlanFailed.envelope.parse(failed?.payload);
    expect(parsed.causationId).toBe(plan.id);
    expect(parsed.data).toMatchObject({ taskId, request, kind: 'general', agentId: 'agent-1' });
    expect(parsed.data.error).toMatchObject({ code: 'BUS.OUTBOX_UNPUBLISHABLE', retryable: false });
    expect(parsed.data.error.message).toMatch(/BUS\.PUBLISH_REFUSED: permissions violation/);
  });

  it('gives no replacement for other rows', () => {
    expect(
      unpublishablePlan('tandem', {
        id: randomUUID(),
        publisher: 'planner',
        subject: 'tandem.task.accepted.v1',
        payload: {},
        headers: {},
        error: { code: 'BUS.PUBLISH_REFUSED', message: 'refused' },
      }),
    ).toEqual([]);
  });
});
