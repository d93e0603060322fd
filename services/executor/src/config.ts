import { BaseConfig } from '@tandem/service-kit';
import { z } from 'zod';

/** The executor's settings (environment variables). */
export const ExecutorConfig = BaseConfig.extend({
  TANDEM_EXECUTOR_PORT: z.coerce.number().int().min(0).max(65535).default(7103),
  TANDEM_SANDBOX_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  TANDEM_SANDBOX_MAX_OUTPUT_BYTES: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024),
  TANDEM_EXECUTOR_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  TANDEM_MAX_DELIVER: z.coerce.number().int().min(2).max(100).default(5),
});
/** The executor's settings. */
export type ExecutorConfig = z.infer<typeof ExecutorConfig>;
