import { Counter, Gauge, Histogram, type ServiceMetrics } from '@tandem/service-kit';

type Registry = ServiceMetrics['registry'];

/** The approval service's own metrics (besides the shared ones of `@tandem/service-kit`). */
export interface ApprovalMetrics {
  /** mode auto|human, outcome approved|rejected|pending|answered|superseded|cancelled|expired. */
  decisions: Counter<'mode' | 'outcome'>;
  /** Seconds from request to human decision (or expiry), by outcome. */
  timeToDecision: Histogram<'outcome'>;
  expiries: Counter<never>;
  escalations: Counter<never>;
  reminders: Counter<never>;
  /** Effective trust per agent and action class, as last changed. */
  trust: Gauge<'agent' | 'class'>;
  /** Auto-approved steps later reverted or failed for a safety reason. */
  falseApprovals: Counter<'reason'>;
  /** Outgoing webhook attempts by result. */
  webhooks: Counter<'result'>;
  /** Decisions received as signed webhooks, by result (accepted, or why refused). */
  inboundWebhooks: Counter<'result'>;
}

/** Registers the metrics on the service's registry. */
export function createApprovalMetrics(registry: Registry): ApprovalMetrics {
  const registers = [registry];
  return {
    decisions: new Counter({
      name: 'tandem_approval_decisions_total',
      help: 'Approval decisions by mode and outcome',
      labelNames: ['mode', 'outcome'],
      registers,
    }),
    timeToDecision: new Histogram({
      name: 'tandem_approval_time_to_decision_seconds',
      help: 'Time from an approval request to its human decision or expiry',
      labelNames: ['outcome'],
      buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
      registers,
    }),
    expiries: new Counter({
      name: 'tandem_approval_expiries_total',
      help: 'Approval requests rejected because their deadline passed',
      registers,
    }),
    escalations: new Counter({
      name: 'tandem_approval_escalations_total',
      help: 'Approval requests escalated to the second approver group',
      registers,
    }),
    reminders: new Counter({
      name: 'tandem_approval_reminders_total',
      help: 'Reminders sent before a deadline',
      registers,
    }),
    trust: new Gauge({
      name: 'tandem_approval_trust',
      help: 'Effective earned trust per agent and action class (-1..1)',
      labelNames: ['agent', 'class'],
      registers,
    }),
    falseApprovals: new Counter({
      name: 'tandem_approval_false_approvals_total',
      help: 'Auto-approved steps later reverted or failed for a safety reason',
      labelNames: ['reason'],
      registers,
    }),
    webhooks: new Counter({
      name: 'tandem_approval_webhook_deliveries_total',
      help: 'Outgoing approver webhook attempts by result',
      labelNames: ['result'],
      registers,
    }),
    inboundWebhooks: new Counter({
      name: 'tandem_approval_inbound_webhooks_total',
      help: 'Signed decision webhooks received, by result',
      labelNames: ['result'],
      registers,
    }),
  };
}
