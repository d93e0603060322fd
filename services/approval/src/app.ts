import {
  PlanProposed,
  StepFinished,
  PublicSubjects,
  TaskCancelRequestedCloudEvent,
  TaskOutcomeCloudEvent,
} from '@tandem/contracts';
import { poolSql } from '@tandem/db';
import { toolCheckContextFrom, type ServiceRuntime } from '@tandem/service-kit';
import { parseSecrets } from '@tandem/webhooks';
import type { ApprovalConfig } from './config.js';
import { startDeadlineSweep } from './deadlines.js';
import type { DecisionDeps, LoadedPolicy } from './decisions.js';
import { loadPolicy } from './domain/policy.js';
import { handlePlanProposed, PLAN_PROPOSED_CONSUMER, type StepOutcome } from './handlers/plan-proposed.js';
import { handleStepFinished, STEP_FINISHED_CONSUMER } from './handlers/step-finished.js';
import { handleTaskOutcome, TASK_COMPLETED_CONSUMER, TASK_FAILED_CONSUMER } from './handlers/task-outcome.js';
import {
  cloudEventMessageId,
  handleTaskCancelRequested,
  TASK_CANCEL_REQUESTED_CONSUMER,
} from './handlers/task-cancel-requested.js';
import { registerApprovalRoutes } from './http/approvals.js';
import { registerRevertRoute } from './http/revert.js';
import { registerTokenRoutes } from './http/tokens.js';
import { registerTrustRoutes } from './http/trust.js';
import { registerWebhookDecisionRoute } from './http/webhook-decisions.js';
import { effectiveScore } from './domain/trust.js';
import { createApprovalMetrics } from './metrics.js';
import type { RiskOpinion } from './risk-opinion.js';
import { bootstrapAdminBanner, ensureBootstrapAdmin } from './tokens.js';
import { trustStateOf } from './trust-store.js';
import { createDeliveryLoop, type WebhookEndpoint } from './webhooks/delivery.js';
import { pruneReceivedWebhooks } from './webhooks/received.js';

const METRIC_LABELS: Record<StepOutcome, { mode: 'auto' | 'human'; outcome: string }> = {
  'auto-approved': { mode: 'auto', outcome: 'approved' },
  'auto-rejected': { mode: 'auto', outcome: 'rejected' },
  pending: { mode: 'human', outcome: 'pending' },
  superseded: { mode: 'human', outcome: 'superseded' },
  'awaiting-values': { mode: 'auto', outcome: 'awaiting-values' },
};

/** The approver endpoints of the policy with their secrets read from the environment. */
export function webhookEndpoints(
  policy: LoadedPolicy['policy'],
  env: Record<string, string | undefined>,
): WebhookEndpoint[] {
  return (policy.webhooks ?? []).map((endpoint) => {
    const secrets = parseSecrets(env[endpoint.secretEnv]);
    if (secrets.length === 0) {
      throw new Error(`webhook endpoint ${endpoint.name}: ${endpoint.secretEnv} holds no whsec_ secret`);
    }
    return { name: endpoint.name, url: endpoint.url, groups: endpoint.groups ?? [], secrets };
  });
}

/**
 * The approval service: risk x trust x policy per step, durable pending approvals with deadlines,
 * escalation and reminders, decisions exactly once over HTTP or signed webhooks, trust from outcomes,
 * verdicts for learning, signed notifications to approvers.
 */
export async function createApproval(deps: {
  runtime: ServiceRuntime;
  config: ApprovalConfig;
  env?: Record<string, string | undefined>;
  /** A model's second opinion on risk (see risk-opinion.ts); absent: the rules alone. */
  opinion?: RiskOpinion;
}): Promise<void> {
  const { runtime, config } = deps;
  const env = deps.env ?? process.env;
  const { db, kick, log } = runtime;
  const prefix = config.TANDEM_SUBJECT_PREFIX;
  // Validated at start: a bad policy file or webhook secret stops the service with the reason.
  const loaded = loadPolicy(config.TANDEM_APPROVAL_POLICY);
  const endpoints = webhookEndpoints(loaded.policy, env);
  const decisionSecrets = parseSecrets(config.TANDEM_DECISION_WEBHOOK_SECRETS);
  log.info(
    {
      policy: loaded.origin,
      version: loaded.version,
      hash: loaded.hash.slice(0, 12),
      endpoints: endpoints.map((endpoint) => endpoint.name),
      decisionWebhook: decisionSecrets.length > 0,
    },
    'approval policy loaded',
  );
  const bootstrap = await ensureBootstrapAdmin(db, {
    ...(config.TANDEM_ADMIN_TOKEN === undefined ? {} : { token: config.TANDEM_ADMIN_TOKEN }),
    log,
  });
  if (bootstrap.created && bootstrap.token !== undefined) {
    // Printed once, not through the logger (logs are shipped; the token must not be).
    process.stdout.write(bootstrapAdminBanner(bootstrap.token));
  }

  const metrics = createApprovalMetrics(runtime.metrics.registry);
  // The trust gauge starts from the stored trust (then follows every change this replica makes).
  for (const row of (
    await poolSql(db).query(
      `SELECT "agentId", "actionClass", "score", "successes", "failures", "cap" FROM "AgentTrust"
        ORDER BY "updatedAt" DESC LIMIT 5000`,
      [],
    )
  ).rows) {
    const agent = row['agentId'];
    const actionClass = row['actionClass'];
    if (typeof agent === 'string' && typeof actionClass === 'string') {
      metrics.trust.set({ agent, class: actionClass }, effectiveScore(trustStateOf(row)));
    }
  }
  const deliveries = createDeliveryLoop({
    db,
    endpoints,
    log: log.child({ component: 'webhooks' }),
    onResult: (result) => metrics.webhooks.inc({ result }),
  });
  runtime.onStop(() => deliveries.stop());
  const decisionDeps: DecisionDeps = {
    db,
    prefix,
    kick,
    policy: () => loaded,
    checkContext: toolCheckContextFrom(config),
    metrics,
    endpoints: () => endpoints,
    kickDeliveries: deliveries.kick,
  };
  registerApprovalRoutes(runtime.http, decisionDeps);
  registerRevertRoute(runtime.http, decisionDeps);
  registerTrustRoutes(runtime.http, decisionDeps);
  registerTokenRoutes(runtime.http, { db });
  if (decisionSecrets.length > 0) {
    registerWebhookDecisionRoute(runtime.http, { ...decisionDeps, secrets: () => decisionSecrets });
  }

  const autoApprove = new Set(config.TANDEM_AUTO_APPROVE);
  // What judging a step needs, whether the plan just arrived or the step's values now exist.
  const judging = {
    db,
    prefix,
    autoApprove,
    policy: () => loaded,
    endpoints: () => endpoints,
    kick,
    kickDeliveries: deliveries.kick,
    onOutcome: (outcome: StepOutcome) => metrics.decisions.inc(METRIC_LABELS[outcome]),
  };
  const plans = await runtime.consume({
    durable: PLAN_PROPOSED_CONSUMER,
    subject: PlanProposed.subjectSuffix,
    schema: PlanProposed.envelope,
    messageId: (envelope) => envelope.id,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: 4,
    handle: (envelope, context) =>
      handlePlanProposed(
        { ...judging, ...(deps.opinion ? { opinion: deps.opinion } : {}) },
        envelope,
        context,
      ),
  });
  runtime.onStop(() => plans.stop());
  const values = await runtime.consume({
    durable: STEP_FINISHED_CONSUMER,
    subject: StepFinished.subjectSuffix,
    schema: StepFinished.envelope,
    messageId: (envelope) => envelope.id,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: 4,
    handle: (envelope, context) =>
      handleStepFinished({ ...judging, checkContext: decisionDeps.checkContext }, envelope, context),
  });
  runtime.onStop(() => values.stop());
  const cancels = await runtime.consume({
    durable: TASK_CANCEL_REQUESTED_CONSUMER,
    subject: PublicSubjects.taskCancelRequested,
    schema: TaskCancelRequestedCloudEvent,
    messageId: cloudEventMessageId,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: 4,
    handle: (event, context) =>
      handleTaskCancelRequested(
        { db, onCancelled: (count) => metrics.decisions.inc({ mode: 'human', outcome: 'cancelled' }, count) },
        event,
        context,
      ),
  });
  runtime.onStop(() => cancels.stop());
  const outcomes = await Promise.all(
    [
      { durable: TASK_COMPLETED_CONSUMER, subject: PublicSubjects.taskCompleted },
      { durable: TASK_FAILED_CONSUMER, subject: PublicSubjects.taskFailed },
    ].map(({ durable, subject }) =>
      runtime.consume({
        durable,
        subject,
        schema: TaskOutcomeCloudEvent,
        messageId: (event) => event.id,
        maxDeliver: config.TANDEM_MAX_DELIVER,
        concurrency: 2,
        handle: (event, context) => handleTaskOutcome({ db, metrics }, event, context),
      }),
    ),
  );
  runtime.onStop(async () => {
    await Promise.all(outcomes.map((consumer) => consumer.stop()));
  });

  const sweep = startDeadlineSweep(
    {
      db,
      prefix,
      kick,
      kickDeliveries: deliveries.kick,
      policy: () => loaded,
      endpoints: () => endpoints,
      metrics,
      log: log.child({ component: 'deadlines' }),
    },
    config.TANDEM_APPROVAL_SWEEP_MS,
  );
  runtime.onStop(() => sweep.stop());
  // Received webhook ids older than the signature window can go: a replay that old is stale anyway.
  const prune = setInterval(() => {
    pruneReceivedWebhooks(db, new Date(Date.now() - 15 * 60_000)).catch((error: unknown) =>
      log.warn({ err: error }, 'could not prune received webhook ids'),
    );
  }, 60_000);
  prune.unref();
  runtime.onStop(async () => clearInterval(prune));
}
