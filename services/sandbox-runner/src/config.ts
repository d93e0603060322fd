import { BaseConfig } from '@tandem/service-kit';
import { z } from 'zod';

/** The sandbox-runner's settings (environment variables). */
export const SandboxRunnerConfig = BaseConfig.extend({
  TANDEM_SANDBOX_PORT: z.coerce.number().int().min(0).max(65535).default(7104),
  /** Jobs run at once by this replica. */
  TANDEM_SANDBOX_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  /** Operator ceilings: a job asking for more is clamped to these. */
  TANDEM_SANDBOX_MAX_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(60_000),
  TANDEM_SANDBOX_MAX_OUTPUT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(4 * 1024 * 1024),
  TANDEM_MAX_DELIVER: z.coerce.number().int().min(2).max(100).default(5),
});
/** The sandbox-runner's settings. */
export type SandboxRunnerConfig = z.infer<typeof SandboxRunnerConfig>;
