import {
  ApprovalDecisionBody,
  ApprovalView,
  ErrorCodes,
  HttpErrorBody,
  ListApprovalsQuery,
  TandemError,
} from '@tandem/contracts';
import { maySeeApproverGroup, requirePrincipal, type HttpServer } from '@tandem/service-kit';
import { z } from 'zod';
import { applyHumanDecision, type DecisionDeps } from '../decisions.js';
import { findRequest, listRequests, toViews } from '../requests.js';

const IdParams = z.strictObject({ id: z.uuid() });

const ERRORS = {
  400: HttpErrorBody,
  401: HttpErrorBody,
  403: HttpErrorBody,
  404: HttpErrorBody,
  409: HttpErrorBody,
  422: HttpErrorBody,
};

/**
 * `GET /v1/approvals`, `GET /v1/approvals/:id`, `POST /v1/approvals/:id/decision` (approvers and admins).
 * An approver token sees and decides only the requests of its groups (without groups: the requests
 * without a group, which include every request the policy decided itself); a request it does not see is
 * answered like an unknown one (404 APPROVAL.NOT_FOUND). The decision is recorded as made by the
 * caller's token (`token:<name>`); a body's `decidedBy` is kept in the audit row only.
 */
export function registerApprovalRoutes(app: HttpServer, deps: DecisionDeps): void {
  const { db } = deps;
  app.get(
    '/v1/approvals',
    {
      config: { roles: ['approver'] },
      schema: {
        querystring: ListApprovalsQuery,
        response: { 200: z.object({ approvals: z.array(ApprovalView) }), ...ERRORS },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const { status, taskId, limit } = request.query;
      const rows = await listRequests(db, {
        ...(status ? { status } : {}),
        ...(taskId ? { taskId } : {}),
        limit,
        ...(principal.role === 'admin' ? {} : { groups: principal.groups }),
      });
      return { approvals: await toViews(db, rows) };
    },
  );

  app.get(
    '/v1/approvals/:id',
    {
      config: { roles: ['approver'] },
      schema: { params: IdParams, response: { 200: ApprovalView, ...ERRORS } },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const row = await findRequest(db, { id: request.params.id });
      if (!row || !maySeeApproverGroup(principal, row.approverGroup))
        throw new TandemError(ErrorCodes.APPROVAL_NOT_FOUND, `approval ${request.params.id} not found`);
      const [view] = await toViews(db, [row]);
      return view;
    },
  );

  app.post(
    '/v1/approvals/:id/decision',
    {
      config: { roles: ['approver'] },
      schema: {
        params: IdParams,
        body: ApprovalDecisionBody,
        response: { 200: ApprovalView, 202: ApprovalView, ...ERRORS },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const row = await applyHumanDecision(deps, request.params.id, request.body, {
        decidedBy: `token:${principal.name}`,
        role: principal.role,
        groups: principal.groups,
      });
      const [view] = await toViews(db, [row]);
      if (!view) throw new TandemError(ErrorCodes.INTERNAL, `approval ${row.id} has no view`);
      // An edit judged again into a new request decided nothing yet: accepted, still pending.
      return reply.code(row.status === 'pending' ? 202 : 200).send(view);
    },
  );
}
