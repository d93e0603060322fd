import { recentAgentTrust } from '@tandem/db';
import { toolCheckContextFrom, type ServiceRuntime } from '@tandem/service-kit';
import { parseSecrets } from '@tandem/webhooks';
import type { ApprovalConfig } from './config.js';
import type { ApprovalConsumerDeps } from './consumers.js';
import { startDeadlineSweep } from './deadlines.js';
import type { DecisionDeps, LoadedPolicy } from './decisions.js';
import { loadPolicy } from './policy-file.js';
import type { StepOutcome } from './domain/step-judgement.js';
import { planProposed } from './handlers/plan-proposed.js';
import { stepFinished } from './handlers/step-finished.js';
import { taskCancelRequested } from './handlers/task-cancel-requested.js';
import { taskCompleted } from './handlers/task-completed.js';
import { taskFailed } from './handlers/task-failed.js';
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
  const { db, log } = runtime;
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
  for (const row of await recentAgentTrust(db, 5000)) {
    metrics.trust.set({ agent: row.agentId, class: row.actionClass }, effectiveScore(trustStateOf(row)));
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

  // What every consumer needs: judging a step (whether its plan just arrived or its values now exist),
  // cancelling a task's approvals, applying a task's outcome to trust.
  const consumerDeps: ApprovalConsumerDeps = {
    db,
    prefix,
    autoApprove: new Set(config.TANDEM_AUTO_APPROVE),
    policy: () => loaded,
    endpoints: () => endpoints,
    kickDeliveries: deliveries.kick,
    checkContext: decisionDeps.checkContext,
    metrics,
    onOutcome: (outcome: StepOutcome) => metrics.decisions.inc(METRIC_LABELS[outcome]),
    ...(deps.opinion ? { opinion: deps.opinion } : {}),
  };
  const consumers = [
    await runtime.start(planProposed, consumerDeps, { concurrency: 4 }),
    await runtime.start(stepFinished, consumerDeps, { concurrency: 4 }),
    await runtime.start(taskCancelRequested, consumerDeps, { concurrency: 4 }),
    await runtime.start(taskCompleted, consumerDeps, { concurrency: 2 }),
    await runtime.start(taskFailed, consumerDeps, { concurrency: 2 }),
  ];
  runtime.onStop(async () => {
    await Promise.all(consumers.map((consumer) => consumer.stop()));
  });

  const sweep = startDeadlineSweep(
    {
      db,
      prefix,
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
