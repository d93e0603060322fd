import { BaseConfig, ToolPolicyConfig } from '@tandem/service-kit';
import { RiskClass } from '@tandem/contracts';
import { z } from 'zod';

/** An optional setting where an empty value (e.g. `X=` from a compose file) means unset. */
const optionalText = z.preprocess(
  (value) => (value === '' ? undefined : value),
  z.string().min(1).optional(),
);

/** The approval service's settings (environment variables). */
export const ApprovalConfig = BaseConfig.extend(ToolPolicyConfig.shape).extend({
  TANDEM_APPROVAL_PORT: z.coerce.number().int().min(0).max(65535).default(7102),
  /**
   * Comma-separated risk classes that may be approved without a human at all (by trust or an allow
   * rule); steps of other classes always wait for a human. `destructive` is in the floor anyway.
   */
  TANDEM_AUTO_APPROVE: z
    .string()
    .default('read,compute,write,network')
    .transform((value) =>
      value
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item.length > 0),
    )
    .pipe(z.array(RiskClass)),
  /** The policy file (YAML or JSON); unset: the shipped default (services/approval/policy/default.yaml). */
  TANDEM_APPROVAL_POLICY: optionalText,
  /** Secrets (whsec_..., comma-separated, two during a rotation) of signed decision webhooks; unset: route off. */
  TANDEM_DECISION_WEBHOOK_SECRETS: optionalText,
  /** How often pending deadlines, reminders and escalations are checked. */
  TANDEM_APPROVAL_SWEEP_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /** The first admin token (at least 32 characters); unset: one is created and printed once. */
  TANDEM_ADMIN_TOKEN: optionalText,
  /**
   * Ask the planning model (the usual model settings) for a second opinion on steps the rules rated low
   * or medium; it may only raise a level. Off by default.
   */
  TANDEM_APPROVAL_RISK_OPINION: z.stringbool().default(false),
  TANDEM_APPROVAL_RISK_OPINION_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5000),
  TANDEM_MAX_DELIVER: z.coerce.number().int().min(2).max(100).default(5),
});
/** The approval service's settings. */
export type ApprovalConfig = z.infer<typeof ApprovalConfig>;
