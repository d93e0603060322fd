import { randomUUID } from 'node:crypto';
import { createEnvelope, PlanProposed } from '@tandem/contracts';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLAN_PROPOSED_CONSUMER } from '../src/handlers/plan-proposed.js';
import { createHarness, RUN_THEN_RESPOND, type Harness } from './harness.js';
import { auditCount, auditRows, outboxRows, processedCount, requestsWhere } from './helpers/rows.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

async function requestsOf(planId: string) {
  // Ordered by tool: respond before run_code.
  return requestsWhere(harness.runtime.db, { planId }, 'tool');
}

describe('plan versions', () => {
  it('a newer version supersedes the pending requests of the old one; deciding an old one is a 409', async () => {
    const task = await harness.seedTask();
    const v1 = await harness.seedPlan(task, 1, RUN_THEN_RESPOND);
    await harness.proposeAndWait(v1);
    const [oldRespond, oldRun] = await requestsOf(v1.planId);
    expect(oldRun).toMatchObject({ tool: 'run_code', status: 'pending', mode: 'human' });
    expect(oldRespond).toMatchObject({ tool: 'respond', status: 'approved', mode: 'auto' });

    // The planner records the editing token as editedBy; a name the client gave is a label beside it.
    const editor = `token:${randomUUID()}`;
    const v2 = await harness.seedPlan(task, 2, RUN_THEN_RESPOND, {
      supersedes: v1.planId,
      origin: 'human',
      editedBy: editor,
    });
    await harness.proposeAndWait({ ...v2, editedByLabel: 'admin' });

    const old = await requestsOf(v1.planId);
    expect(old.map((row) => [row.tool, row.status])).toEqual([
      ['respond', 'approved'],
      ['run_code', 'superseded'],
    ]);
    expect(old.find((row) => row.tool === 'run_code')).toMatchObject({
      decidedBy: editor,
      reason: 'superseded by plan version 2 (human)',
    });
    const fresh = await requestsOf(v2.planId);
    expect(fresh.map((row) => [row.tool, row.status])).toEqual([
      ['respond', 'approved'],
      ['run_code', 'pending'],
    ]);
    const audit = await auditRows(harness.runtime.db, { subjectId: oldRun?.stepId ?? '' });
    expect(audit.map((row) => [row.action, row.actor])).toEqual([
      ['approval.requested', null],
      ['approval.superseded', editor],
    ]);
    expect(audit[1]?.data).toMatchObject({ editedByLabel: 'admin' });

    // v2's auto-approval is published after anything v1 or the superseding enqueued (the outbox keeps order).
    const v2Respond = fresh.find((row) => row.tool === 'respond');
    await waitFor(() => harness.autoDecided.some((decision) => decision.approvalId === v2Respond?.id), {
      description: "v2's auto-approval on the bus",
    });

    const late = await harness.post(`/v1/approvals/${oldRun?.id}/decision`, { decision: 'approve' });
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({
      error: { code: 'APPROVAL.ALREADY_DECIDED', details: { status: 'superseded' } },
    });
    const view = await harness.get(`/v1/approvals/${oldRun?.id}`);
    expect(view.body).toMatchObject({ status: 'superseded', kind: 'approval' });

    const listed = await harness.get(`/v1/approvals?status=superseded&taskId=${task.taskId}`);
    expect((listed.body['approvals'] as Array<{ id: string }>).map((row) => row.id)).toEqual([oldRun?.id]);

    // The superseded request never produced a decision, neither by superseding nor by the late approve.
    const outbox = await outboxRows(harness.runtime.db, 'approval');
    const decidedIds = outbox
      .filter(
        (row) =>
          row.subject.endsWith('.approval.decided.v1') || row.subject.endsWith('.approval.batch-decided.v1'),
      )
      .map((row) => JSON.stringify(row.payload));
    expect(decidedIds.some((payload) => payload.includes(oldRun?.id ?? 'none'))).toBe(false);
    expect(harness.decided.map((event) => event.data.approvalId)).not.toContain(oldRun?.id);
  });

  it('a redelivered newer version changes nothing', async () => {
    const task = await harness.seedTask();
    const v1 = await harness.seedPlan(task, 1, RUN_THEN_RESPOND);
    await harness.proposeAndWait(v1);
    const v2 = await harness.seedPlan(task, 2, RUN_THEN_RESPOND, { supersedes: v1.planId });
    const envelope = await harness.proposeAndWait(v2);
    const before = await requestsWhere(harness.runtime.db, { taskId: task.taskId }, 'id');
    const auditBefore = await auditCount(harness.runtime.db);
    const outboxBefore = (await outboxRows(harness.runtime.db)).length;

    // The same envelope again (past JetStream's duplicate window: another Nats-Msg-Id) ...
    await harness.waitForAck(
      PLAN_PROPOSED_CONSUMER,
      'plan',
      await harness.publishPlan(envelope, randomUUID()),
    );
    // ... and the same plan in a new envelope, as a re-publish would send it.
    await harness.proposeAndWait(v2);

    const after = await requestsWhere(harness.runtime.db, { taskId: task.taskId }, 'id');
    expect(after).toEqual(before);
    expect(await auditCount(harness.runtime.db)).toBe(auditBefore);
    expect((await outboxRows(harness.runtime.db)).length).toBe(outboxBefore);
  });

  it('an older version arriving after a newer one creates nothing', async () => {
    const task = await harness.seedTask();
    const v1 = await harness.seedPlan(task, 1, RUN_THEN_RESPOND);
    const v2 = await harness.seedPlan(task, 2, RUN_THEN_RESPOND, { supersedes: v1.planId });
    await harness.proposeAndWait(v2);
    expect((await requestsOf(v2.planId)).map((row) => row.status).sort()).toEqual(['approved', 'pending']);

    const late = createEnvelope(PlanProposed, v1, { correlationId: task.taskId });
    await harness.waitForAck(PLAN_PROPOSED_CONSUMER, 'plan', await harness.publishPlan(late));
    expect(await processedCount(harness.runtime.db, PLAN_PROPOSED_CONSUMER, late.id)).toBe(1);
    expect(await requestsOf(v1.planId)).toEqual([]);
    const pending = await harness.get(`/v1/approvals?status=pending&taskId=${task.taskId}`);
    expect((pending.body['approvals'] as Array<{ planId: string }>).map((row) => row.planId)).toEqual([
      v2.planId,
    ]);
    const outbox = await outboxRows(harness.runtime.db, 'approval');
    expect(outbox.filter((row) => JSON.stringify(row.payload).includes(v1.planId))).toEqual([]);
  });

  it('two versions handled at once never leave the older one pending', async () => {
    const rounds = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const task = await harness.seedTask();
        const v1 = await harness.seedPlan(task, 1, RUN_THEN_RESPOND);
        const v2 = await harness.seedPlan(task, 2, RUN_THEN_RESPOND, { supersedes: v1.planId });
        await Promise.all([harness.proposeAndWait(v1), harness.proposeAndWait(v2)]);
        return { v1, v2 };
      }),
    );
    for (const { v1, v2 } of rounds) {
      const old = await requestsOf(v1.planId);
      expect(old.filter((row) => row.status === 'pending')).toEqual([]);
      expect((await requestsOf(v2.planId)).map((row) => row.status).sort()).toEqual(['approved', 'pending']);
    }
  });

  it('a third version arriving before the second supersedes the first one too', async () => {
    const task = await harness.seedTask();
    const v1 = await harness.seedPlan(task, 1, RUN_THEN_RESPOND);
    await harness.proposeAndWait(v1);
    const v2 = await harness.seedPlan(task, 2, RUN_THEN_RESPOND, { supersedes: v1.planId });
    const v3 = await harness.seedPlan(task, 3, RUN_THEN_RESPOND, { supersedes: v2.planId });
    await harness.proposeAndWait(v3);
    await harness.proposeAndWait(v2);
    expect((await requestsOf(v1.planId)).map((row) => row.status).sort()).toEqual(['approved', 'superseded']);
    expect(await requestsOf(v2.planId)).toEqual([]);
    expect((await requestsOf(v3.planId)).map((row) => row.status).sort()).toEqual(['approved', 'pending']);
  });
});
