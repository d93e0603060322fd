import { z } from 'zod';
import { createBwrapBackend, type SandboxBackend } from './sandbox/index.js';

/**
 * Which backend runs jobs (environment variables). Only `bwrap` exists; the setting is where a gVisor or
 * microVM backend — or an explicitly chosen weaker one — will be selected. Needs no database or NATS.
 */
export const SandboxBackendConfig = z.object({
  TANDEM_SANDBOX_BACKEND: z.enum(['bwrap']).default('bwrap'),
  TANDEM_SANDBOX_BWRAP_PATH: z.string().startsWith('/').default('/usr/bin/bwrap'),
});
/** Which backend runs jobs. */
export type SandboxBackendConfig = z.infer<typeof SandboxBackendConfig>;

/**
 * The backend every job runs on, for the service and for `pnpm sandbox run` alike (one place, so the
 * command checks exactly what the service runs).
 */
export function createConfiguredBackend(
  config: SandboxBackendConfig = SandboxBackendConfig.parse({}),
): SandboxBackend {
  return createBwrapBackend({ bwrapPath: config.TANDEM_SANDBOX_BWRAP_PATH });
}
