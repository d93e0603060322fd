import { BaseConfig } from '@tandem/service-kit';
import { z } from 'zod';
import { SandboxBackendConfig } from './backend.js';
import { SandboxCeilingsConfig } from './limits.js';

/** The sandbox-runner's settings (environment variables). */
export const SandboxRunnerConfig = BaseConfig.extend(SandboxCeilingsConfig.shape)
  .extend(SandboxBackendConfig.shape)
  .extend({
    TANDEM_SANDBOX_PORT: z.coerce.number().int().min(0).max(65535).default(7104),
    /** Jobs run at once by this replica. */
    TANDEM_SANDBOX_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
    TANDEM_MAX_DELIVER: z.coerce.number().int().min(2).max(100).default(5),
    /**
     * Runs of one job before it ends SANDBOX.INTERRUPTED: the first, plus deliberate re-runs after a
     * runner died mid-job (each logged and counted in SandboxRun.attempts).
     */
    TANDEM_SANDBOX_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  });
/** The sandbox-runner's settings. */
export type SandboxRunnerConfig = z.infer<typeof SandboxRunnerConfig>;
