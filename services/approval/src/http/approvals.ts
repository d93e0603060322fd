import { randomUUID } from 'node:crypto';
import {
  ApprovalDecided,
  ApprovalDecisionBody,
  ApprovalView,
  ErrorCodes,
  HttpErrorBody,
  JsonValue,
  ListApprovalsQuery,
  TandemError,
} from '@tandem/contracts';
import { enqueueOutbox, type Db } from '@tandem/db';
import { outboxEvent, type HttpServer } from '@tandem/service-kit';
import { z } from 'zod';
import { humanOutcome, requestKindOf, type HumanOutcome } from '../domain/human-decision.js';
import { parseQuestion } from '../domain/question.js';

const IdParams = z.strictObject({ id: z.uuid() });

type ApprovalRow = Awaited<ReturnType<Db['prisma']['approvalRequest']['findMany']>>[number];

async function toViews(db: Db, rows: ApprovalRow[]): Promise<ApprovalView[]> {
  const stepIds = rows.map((row) => row.stepId).filter((id): id is string => id !== null);
  const steps =
    stepIds.length === 0
      ? []
      : await db.prisma.planStep.findMany({
          where: { id: { in: stepIds } },
          select: { id: true, arguments: true },
        });
  const argumentsByStep = new Map(steps.map((step) => [step.id, step.arguments]));
  return rows.map((row) => {
    const args = row.stepId ? JsonValue.safeParse(argumentsByStep.get(row.stepId) ?? null) : null;
    return ApprovalView.parse({
      id: row.id,
      taskId: row.taskId,
      planId: row.planId,
      stepId: row.stepId,
      tool: row.tool,
      arguments: args?.success ? args.data : null,
      riskClass: row.riskClass,
      agentId: row.agentId,
      kind: requestKindOf(row.kind),
      question: row.question,
      answer: row.answer,
      mode: row.mode,
      status: row.status,
      decidedBy: row.decidedBy,
      decidedAt: row.decidedAt?.toISOString() ?? null,
      reason: row.reason,
      createdAt: row.createdAt.toISOString(),
    });
  });
}

/** The choices of a question's step as planned (null: any answer), read from the planner's PlanStep. */
async function choicesOf(db: Db, stepId: string | null): Promise<string[] | null> {
  if (stepId === null) return null;
  const step = await db.prisma.planStep.findUnique({ where: { id: stepId }, select: { arguments: true } });
  return step ? (parseQuestion(step.arguments)?.choices ?? null) : null;
}

/** `GET /v1/approvals`, `GET /v1/approvals/:id`, `POST /v1/approvals/:id/decision`. */
export function registerApprovalRoutes(
  app: HttpServer,
  deps: {
    db: Db;
    prefix: string;
    kick: () => void;
    onDecision?: (outcome: HumanOutcome['status']) => void;
  },
): void {
  app.get(
    '/v1/approvals',
    {
      schema: {
        querystring: ListApprovalsQuery,
        response: { 200: z.object({ approvals: z.array(ApprovalView) }), 400: HttpErrorBody },
      },
    },
    async (request) => {
      const { status, taskId, limit } = request.query;
      const rows = await deps.db.prisma.approvalRequest.findMany({
        where: { ...(status ? { status } : {}), ...(taskId ? { taskId } : {}) },
        orderBy: { createdAt: 'asc' },
        take: limit,
      });
      return { approvals: await toViews(deps.db, rows) };
    },
  );

  app.get(
    '/v1/approvals/:id',
    { schema: { params: IdParams, response: { 200: ApprovalView, 404: HttpErrorBody } } },
    async (request) => {
      const row = await deps.db.prisma.approvalRequest.findUnique({ where: { id: request.params.id } });
      if (!row)
        throw new TandemError(ErrorCodes.APPROVAL_NOT_FOUND, `approval ${request.params.id} not found`);
      const [view] = await toViews(deps.db, [row]);
      return view;
    },
  );

  app.post(
    '/v1/approvals/:id/decision',
    {
      schema: {
        params: IdParams,
        body: ApprovalDecisionBody,
        response: {
          200: ApprovalView,
          400: HttpErrorBody,
          404: HttpErrorBody,
          409: HttpErrorBody,
          422: HttpErrorBody,
        },
      },
    },
    async (request) => {
      const id = request.params.id;
      const decidedBy = request.body.decidedBy ?? 'api';
      // kind, question and step never change after creation: checking them before the transaction is safe.
      const found = await deps.db.prisma.approvalRequest.findUnique({
        where: { id },
        select: { kind: true, stepId: true },
      });
      if (!found) throw new TandemError(ErrorCodes.APPROVAL_NOT_FOUND, `approval ${id} not found`);
      const kind = requestKindOf(found.kind);
      const choices =
        kind === 'question' && request.body.decision === 'answer'
          ? await choicesOf(deps.db, found.stepId)
          : null;
      const checked = humanOutcome({ kind, choices }, request.body);
      if (!checked.ok) {
        throw new TandemError(checked.problem.code, checked.problem.message, {
          details: { kind, ...checked.problem.details },
        });
      }
      const { status, reason, answer } = checked.outcome;
      const row = await deps.db.prisma.$transaction(async (tx) => {
        // The conditional update is the exactly-once gate: only one decision moves a request out of pending.
        const updated = await tx.approvalRequest.updateMany({
          where: { id, status: 'pending' },
          data: { status, decidedBy, decidedAt: new Date(), reason, ...(answer === null ? {} : { answer }) },
        });
        const current = await tx.approvalRequest.findUnique({ where: { id } });
        if (!current) throw new TandemError(ErrorCodes.APPROVAL_NOT_FOUND, `approval ${id} not found`);
        if (updated.count === 0) {
          throw new TandemError(
            ErrorCodes.APPROVAL_ALREADY_DECIDED,
            `approval ${current.id} is already ${current.status}`,
            { details: { status: current.status } },
          );
        }
        if (!current.stepId) throw new TandemError(ErrorCodes.INTERNAL, `approval ${current.id} has no step`);
        await tx.auditLog.create({
          data: {
            id: randomUUID(),
            service: 'approval',
            action: `approval.${status}`,
            subjectType: 'step',
            subjectId: current.stepId,
            actor: decidedBy,
            reason,
            data: {
              approvalId: current.id,
              taskId: current.taskId,
              kind,
              ...(answer === null ? {} : { answer }),
            },
          },
        });
        const { message } = outboxEvent(
          { prefix: deps.prefix, publisher: 'approval' },
          ApprovalDecided,
          {
            approvalId: current.id,
            taskId: current.taskId,
            planId: current.planId,
            stepId: current.stepId,
            decision: status,
            mode: 'human',
            decidedBy,
            reason,
            ...(answer === null ? {} : { answer }),
          },
          { correlationId: current.taskId, causationId: null },
        );
        await enqueueOutbox(tx, message);
        return current;
      });
      deps.kick();
      deps.onDecision?.(status);
      const [view] = await toViews(deps.db, [row]);
      return view;
    },
  );
}
