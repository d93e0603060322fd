import { consumersOf } from '@tandem/bus';
import type { RiskClass, ToolCheckContext } from '@tandem/contracts';
import type { Db } from '@tandem/db';
import type { LoadedPolicy } from './domain/policy.js';
import type { StepOutcome } from './domain/step-judgement.js';
import type { ApprovalMetrics } from './metrics.js';
import type { RiskOpinion } from './risk-opinion.js';
import type { WebhookEndpoint } from './webhooks/delivery.js';

/** What the approval service's consumers need. */
export interface ApprovalConsumerDeps {
  db: Db;
  prefix: string;
  /** Risk classes that may be approved without a human at all (TANDEM_AUTO_APPROVE). */
  autoApprove: ReadonlySet<RiskClass>;
  policy: () => LoadedPolicy;
  endpoints: () => readonly WebhookEndpoint[];
  /** Wakes the webhook delivery loop after deliveries were queued (not the outbox: it needs no nudge). */
  kickDeliveries: () => void;
  checkContext: ToolCheckContext;
  metrics: ApprovalMetrics;
  /** Counts what became of each judged step. */
  onOutcome?: (outcome: StepOutcome) => void;
  /** A model's second opinion on risk (TANDEM_APPROVAL_RISK_OPINION): may only raise a level. */
  opinion?: RiskOpinion;
}

/** Declares one of the approval service's consumers (checked against its topology in @tandem/bus). */
export const define = consumersOf<ApprovalConsumerDeps>('approval');
