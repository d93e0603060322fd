import { BaseConfig } from '@tandem/service-kit';
import { z } from 'zod';

/** The executor's settings (environment variables). */
export const ExecutorConfig = BaseConfig.extend({
  TANDEM_EXECUTOR_PORT: z.coerce.number().int().min(0).max(65535).default(7103),
  /** Limits the executor asks for per code step (the sandbox-runner clamps them to its own ceilings). */
  TANDEM_STEP_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  TANDEM_STEP_MAX_OUTPUT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
  TANDEM_STEP_MEMORY_MB: z.coerce.number().int().min(16).max(16_384).default(256),
  TANDEM_EXECUTOR_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  TANDEM_MAX_DELIVER: z.coerce.number().int().min(2).max(100).default(5),
});
/** The executor's settings. */
export type ExecutorConfig = z.infer<typeof ExecutorConfig>;
