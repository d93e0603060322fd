import { ErrorCodes, HttpErrorBody, RevertStepBody, TandemError } from '@tandem/contracts';
import { enqueueOutbox, revertApprovalRequest, stepRunStatus, transaction } from '@tandem/db';
import { reachesTask, requirePrincipal, type HttpServer } from '@tandem/service-kit';
import { z } from 'zod';
import { writeAudit } from '../audit.js';
import { reportTrust, trustSubject, type DecisionDeps } from '../decisions.js';
import { findRequest, lockRequest, stepContext } from '../requests.js';
import { applyTrustChange, type AppliedTrustChange } from '../trust-store.js';
import { verdictMessage } from '../messages.js';

const IdParams = z.strictObject({ id: z.uuid() });

const RevertedView = z.object({
  stepId: z.uuid(),
  approvalId: z.uuid(),
  revertedAt: z.string(),
  revertedBy: z.string(),
  reason: z.string(),
  falseApproval: z.boolean(),
});

/**
 * `POST /v1/steps/:id/revert` (approvers and admins that may act on the step's task, see `mayActOnTask`;
 * others get the 404 of an unknown step): marks an executed step reverted. It counts against
 * the agent's trust like a rejection, goes to learning as a `reverted` verdict, and an auto-approved
 * step that is reverted is a false approval. A step is reverted once (`409` after).
 */
export function registerRevertRoute(app: HttpServer, deps: DecisionDeps): void {
  app.post(
    '/v1/steps/:id/revert',
    {
      config: { roles: ['approver'] },
      schema: {
        params: IdParams,
        body: RevertStepBody,
        response: {
          200: RevertedView,
          400: HttpErrorBody,
          401: HttpErrorBody,
          403: HttpErrorBody,
          404: HttpErrorBody,
          409: HttpErrorBody,
        },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const actor = `token:${principal.name}`;
      const stepId = request.params.id;
      const reason = request.body.reason;
      const noRecord = () =>
        new TandemError(ErrorCodes.STEP_NOT_FOUND, `step ${stepId} has no approval record`);
      // A step of a task the token may not act on is answered like a step without a record.
      const known = await findRequest(deps.db, { stepId });
      if (!known || !(await reachesTask(deps.db, principal, known.taskId))) throw noRecord();
      let change: AppliedTrustChange | null = null;
      const result = await transaction(deps.db, async (tx) => {
        const approval = await lockRequest(tx, { stepId });
        if (!approval) throw noRecord();
        if (approval.revertedAt !== null) {
          throw new TandemError(ErrorCodes.STEP_NOT_REVERTIBLE, `step ${stepId} is already reverted`, {
            details: { revertedAt: approval.revertedAt.toISOString() },
          });
        }
        const status = await stepRunStatus(tx, stepId);
        if (status !== 'completed') {
          throw new TandemError(
            ErrorCodes.STEP_NOT_REVERTIBLE,
            `step ${stepId} did not complete, so it cannot be reverted`,
            {
              details: { status },
            },
          );
        }
        const revertedAt = await revertApprovalRequest(tx, { id: approval.id, revertedBy: actor, reason });
        await writeAudit(tx, [
          {
            action: 'approval.reverted',
            subject: { type: 'step', id: stepId },
            actor,
            reason,
            data: {
              approvalId: approval.id,
              taskId: approval.taskId,
              mode: approval.mode,
              basis: approval.basis,
            },
          },
        ]);
        const subject = trustSubject(approval);
        if (subject) {
          change = await applyTrustChange(tx, {
            ...subject,
            kind: 'revert',
            sourceEvent: `revert:${stepId}`,
            reason: `reverted by ${actor}: ${reason}`,
            actor,
          });
        }
        const step = await stepContext(tx, stepId);
        if (step) {
          await enqueueOutbox(tx, [
            verdictMessage(deps.prefix, approval, step, { verdict: 'reverted', reason, decidedBy: actor }),
          ]);
        }
        return {
          stepId,
          approvalId: approval.id,
          revertedAt: (revertedAt ?? new Date()).toISOString(),
          revertedBy: actor,
          reason,
          falseApproval: approval.mode === 'auto',
        };
      });
      reportTrust(deps.metrics, [change]);
      if (result.falseApproval) deps.metrics.falseApprovals.inc({ reason: 'reverted' });
      return result;
    },
  );
}
