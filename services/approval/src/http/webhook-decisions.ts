import {
  ApprovalView,
  DEFAULT_HTTP_BODY_LIMITS,
  ErrorCodes,
  HttpErrorBody,
  TandemError,
  WebhookDecisionBody,
  type ApprovalDecisionBody,
} from '@tandem/contracts';
import { claimWebhookId, transaction } from '@tandem/db';
import { checkJsonBody, type HttpServer } from '@tandem/service-kit';
import { verifyWebhook } from '@tandem/webhooks';
import { applyHumanDecision, type DecisionDeps } from '../decisions.js';
import { toViews } from '../requests.js';

/** The decision route for approvers' systems (Standard Webhooks signature instead of a bearer token). */
export const DECISION_WEBHOOK_ROUTE = '/v1/webhooks/decisions';

/** Largest decision webhook body, in UTF-8 bytes (room for a decision with edited tool arguments). */
const WEBHOOK_BODY_LIMIT = 256 * 1024;

function toDecisionBody(body: WebhookDecisionBody): ApprovalDecisionBody {
  switch (body.decision) {
    case 'approve':
      return { decision: 'approve', ...(body.reason === undefined ? {} : { reason: body.reason }) };
    case 'reject':
      return { decision: 'reject', reason: body.reason };
    case 'edit':
      return {
        decision: 'edit',
        arguments: body.arguments,
        ...(body.reason === undefined ? {} : { reason: body.reason }),
      };
    case 'answer':
      return { decision: 'answer', answer: body.answer };
  }
}

/**
 * `POST /v1/webhooks/decisions`: a decision signed with one of `secrets()` (two during a rotation). A
 * missing, wrong, stale (older than 5 minutes) or replayed (`webhook-id` seen before) signature gets
 * `401` and changes nothing. The body is checked only after the signature, strictly (unknown fields are
 * refused, nothing is coerced). The `webhook-id` is claimed in the decision's transaction; a definitive
 * refusal (4xx) claims it too, so only a server error leaves it open for the sender's retry.
 */
export function registerWebhookDecisionRoute(
  app: HttpServer,
  deps: DecisionDeps & { secrets: () => readonly string[] },
): void {
  void app.register(async (scope) => {
    // The signature covers the exact bytes: keep the body as text here and parse it after verifying.
    // Size and depth are checked on that text first, as for every JSON body (413 / 400, never a 500).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'string', bodyLimit: WEBHOOK_BODY_LIMIT },
      (_request, body, done) => {
        const text = typeof body === 'string' ? body : body.toString('utf8');
        const refused = checkJsonBody(text, {
          maxBytes: WEBHOOK_BODY_LIMIT,
          maxDepth: DEFAULT_HTTP_BODY_LIMITS.maxDepth,
        });
        if (refused !== null) done(refused, undefined);
        else done(null, text);
      },
    );
    scope.post(
      DECISION_WEBHOOK_ROUTE,
      {
        config: { public: true },
        schema: {
          response: {
            200: ApprovalView,
            400: HttpErrorBody,
            401: HttpErrorBody,
            403: HttpErrorBody,
            404: HttpErrorBody,
            409: HttpErrorBody,
            422: HttpErrorBody,
          },
        },
      },
      async (request) => {
        const raw = typeof request.body === 'string' ? request.body : '';
        const verified = verifyWebhook({ headers: request.headers, body: raw, secrets: deps.secrets() });
        if (!verified.ok) {
          deps.metrics.inboundWebhooks.inc({ result: verified.reason });
          throw new TandemError(ErrorCodes.WEBHOOK_SIGNATURE_INVALID, verified.message, {
            details: { reason: verified.reason },
          });
        }
        try {
          let json: unknown;
          try {
            json = JSON.parse(raw);
          } catch {
            throw new TandemError(ErrorCodes.HTTP_BAD_REQUEST, 'the webhook body is not JSON');
          }
          const body = WebhookDecisionBody.safeParse(json);
          if (!body.success) {
            throw new TandemError(ErrorCodes.HTTP_BAD_REQUEST, 'invalid webhook body', {
              details: {
                issues: body.error.issues.map((issue) => ({
                  path: issue.path.join('.'),
                  message: issue.message,
                })),
              },
            });
          }
          const row = await applyHumanDecision(
            deps,
            body.data.approvalId,
            toDecisionBody(body.data),
            { decidedBy: `webhook:${body.data.decidedBy}`, role: 'webhook', groups: [] },
            { webhookId: verified.id },
          );
          deps.metrics.inboundWebhooks.inc({ result: 'accepted' });
          const [view] = await toViews(deps.db, [row]);
          return view;
        } catch (error) {
          if (error instanceof TandemError && error.code === ErrorCodes.WEBHOOK_SIGNATURE_INVALID) {
            deps.metrics.inboundWebhooks.inc({ result: 'replay' });
          } else if (error instanceof TandemError && !error.retryable && error.code !== ErrorCodes.INTERNAL) {
            // A definitive answer: the same webhook-id sent again is a replay.
            await transaction(deps.db, (tx) => claimWebhookId(tx, verified.id));
            deps.metrics.inboundWebhooks.inc({ result: 'refused' });
          }
          throw error;
        }
      },
    );
  });
}
