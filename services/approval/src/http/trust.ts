import { randomUUID } from 'node:crypto';
import {
  CapTrustBody,
  ErrorCodes,
  HttpErrorBody,
  ResetTrustBody,
  TandemError,
  TrustView,
} from '@tandem/contracts';
import { agentExists, agentTrustRows, transaction, trustHistory, type DbOrTx } from '@tandem/db';
import { requirePrincipal, type HttpServer } from '@tandem/service-kit';
import { z } from 'zod';
import { reportTrust, type DecisionDeps } from '../decisions.js';
import { effectiveScore } from '../domain/trust.js';
import { applyTrustChange, trustStateOf, type AppliedTrustChange } from '../trust-store.js';

const AgentParams = z.strictObject({ id: z.string().min(1).max(200) });

const TrustHistoryEntry = z.object({
  actionClass: z.string(),
  kind: z.string(),
  sourceEvent: z.string(),
  scoreBefore: z.number(),
  scoreAfter: z.number(),
  reason: z.string(),
  actor: z.string().nullable(),
  createdAt: z.string(),
});

const AgentTrustView = z.object({
  agentId: z.string(),
  trust: z.array(TrustView),
  history: z.array(TrustHistoryEntry),
});

const ERRORS = { 400: HttpErrorBody, 401: HttpErrorBody, 403: HttpErrorBody, 404: HttpErrorBody };

async function readAgentTrust(
  source: DbOrTx,
  agentId: string,
): Promise<z.infer<typeof AgentTrustView> | null> {
  if (!(await agentExists(source, agentId))) return null;
  const trust = await agentTrustRows(source, agentId);
  const history = await trustHistory(source, agentId, 100);
  return {
    agentId,
    trust: trust.map((row) =>
      TrustView.parse({
        agentId: row.agentId,
        actionClass: row.actionClass,
        score: effectiveScore(trustStateOf(row)),
        successes: row.successes,
        failures: row.failures,
        cap: row.cap,
        updatedAt: row.updatedAt.toISOString(),
      }),
    ),
    history: history.map((row) =>
      TrustHistoryEntry.parse({ ...row, createdAt: row.createdAt.toISOString() }),
    ),
  };
}

/**
 * `GET /v1/agents/:id/trust` (approvers, admins): trust per action class with its recent history.
 * `POST /v1/agents/:id/trust/reset` and `POST /v1/agents/:id/trust/cap` (admins): each change is a trust
 * event with its reason and the admin who made it.
 */
export function registerTrustRoutes(app: HttpServer, deps: DecisionDeps): void {
  const { db } = deps;
  app.get(
    '/v1/agents/:id/trust',
    {
      config: { roles: ['approver'] },
      schema: { params: AgentParams, response: { 200: AgentTrustView, ...ERRORS } },
    },
    async (request) => {
      const view = await readAgentTrust(db, request.params.id);
      if (!view)
        throw new TandemError(ErrorCodes.AGENT_NOT_FOUND, `agent ${request.params.id} has no trust record`);
      return view;
    },
  );

  const change = async (
    agentId: string,
    classes: readonly string[],
    event: { kind: 'reset' | 'cap'; cap?: number | null; reason: string; actor: string },
  ): Promise<void> => {
    const applied: (AppliedTrustChange | null)[] = [];
    await transaction(deps.db, async (tx) => {
      const source = `admin:${randomUUID()}`;
      for (const actionClass of classes) {
        applied.push(
          await applyTrustChange(tx, {
            agentId,
            actionClass,
            kind: event.kind,
            ...(event.kind === 'cap' ? { cap: event.cap ?? null } : {}),
            sourceEvent: source,
            reason: event.reason,
            actor: event.actor,
          }),
        );
      }
    });
    reportTrust(deps.metrics, applied);
  };

  app.post(
    '/v1/agents/:id/trust/reset',
    {
      config: { roles: ['admin'] },
      schema: { params: AgentParams, body: ResetTrustBody, response: { 200: AgentTrustView, ...ERRORS } },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const agentId = request.params.id;
      const classes = request.body.actionClass
        ? [request.body.actionClass]
        : (await agentTrustRows(db, agentId)).map((row) => row.actionClass);
      if (classes.length === 0)
        throw new TandemError(ErrorCodes.AGENT_NOT_FOUND, `agent ${agentId} has no trust record`);
      await change(agentId, classes, {
        kind: 'reset',
        reason: request.body.reason,
        actor: `token:${principal.name}`,
      });
      const view = await readAgentTrust(db, agentId);
      if (!view) throw new TandemError(ErrorCodes.AGENT_NOT_FOUND, `agent ${agentId} has no trust record`);
      return view;
    },
  );

  app.post(
    '/v1/agents/:id/trust/cap',
    {
      config: { roles: ['admin'] },
      schema: { params: AgentParams, body: CapTrustBody, response: { 200: AgentTrustView, ...ERRORS } },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const agentId = request.params.id;
      await change(agentId, [request.body.actionClass], {
        kind: 'cap',
        cap: request.body.cap,
        reason: request.body.reason,
        actor: `token:${principal.name}`,
      });
      const view = await readAgentTrust(db, agentId);
      if (!view) throw new TandemError(ErrorCodes.AGENT_NOT_FOUND, `agent ${agentId} has no trust record`);
      return view;
    },
  );
}
