import { availableParallelism } from 'node:os';
import { z } from 'zod';
import type { SandboxCeilingsConfig } from './limits.js';
import { createBwrapBackend, type SandboxBackend } from './sandbox/index.js';

/**
 * Which backend runs jobs (environment variables). `bwrap` (default) isolates every job in a bubblewrap
 * sandbox and the runner refuses to start where it cannot. `process` is the weaker backend an operator may
 * choose explicitly where bubblewrap is not available: the same limits, cgroups, uid and empty environment,
 * but no namespaces and no syscall filter (the runner says so in its logs and in /readyz). A gVisor or
 * microVM backend would be another value. Needs no database or NATS.
 */
export const SandboxBackendConfig = z.object({
  TANDEM_SANDBOX_BACKEND: z.enum(['bwrap', 'process']).default('bwrap'),
  TANDEM_SANDBOX_BWRAP_PATH: z.string().startsWith('/').default('/usr/bin/bwrap'),
  /**
   * Warm sandboxes kept per language (each serves one job, then is destroyed). At most twice the cores:
   * a warm box only moves start-up work ahead of the job, and more than the machine can start in parallel
   * only holds memory. 0 turns the pool off.
   */
  TANDEM_SANDBOX_POOL_SIZE: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 * availableParallelism(), { message: `at most twice the cores (${2 * availableParallelism()})` })
    .default(2),
});
/** Which backend runs jobs. */
export type SandboxBackendConfig = z.infer<typeof SandboxBackendConfig>;

/**
 * The backend every job runs on, for the service and for `pnpm sandbox run` alike (one place, so the
 * command checks exactly what the service runs).
 */
export function createConfiguredBackend(
  config: SandboxBackendConfig = SandboxBackendConfig.parse({}),
  ceilings?: Pick<SandboxCeilingsConfig, 'TANDEM_SANDBOX_MAX_TIMEOUT_MS' | 'TANDEM_SANDBOX_MAX_MEMORY_MB'>,
): SandboxBackend {
  return createBwrapBackend({
    isolation: config.TANDEM_SANDBOX_BACKEND === 'process' ? 'none' : 'bwrap',
    bwrapPath: config.TANDEM_SANDBOX_BWRAP_PATH,
    poolSize: config.TANDEM_SANDBOX_POOL_SIZE,
    ...(ceilings === undefined
      ? {}
      : {
          // RLIMIT_CPU backstop: the longest job the operator allows, plus the start, plus slack.
          cpuSeconds: Math.ceil(ceilings.TANDEM_SANDBOX_MAX_TIMEOUT_MS / 1000) + 40,
          defaultMemoryMb: ceilings.TANDEM_SANDBOX_MAX_MEMORY_MB,
        }),
  });
}
