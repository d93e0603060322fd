import { BaseConfig } from '@tandem/service-kit';
import { RiskClass } from '@tandem/contracts';
import { z } from 'zod';

/** The approval service's settings (environment variables). */
export const ApprovalConfig = BaseConfig.extend({
  TANDEM_APPROVAL_PORT: z.coerce.number().int().min(0).max(65535).default(7102),
  /** Comma-separated risk classes approved without a human. */
  TANDEM_AUTO_APPROVE: z
    .string()
    .default('read,compute')
    .transform((value) =>
      value
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item.length > 0),
    )
    .pipe(z.array(RiskClass)),
  TANDEM_MAX_DELIVER: z.coerce.number().int().min(2).max(100).default(5),
});
/** The approval service's settings. */
export type ApprovalConfig = z.infer<typeof ApprovalConfig>;
