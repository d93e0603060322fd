import { fileURLToPath } from 'node:url';

/** The repository root (this file is packages/launcher/src/paths.ts). */
export const repositoryRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The five services, in start order. */
export const SERVICES = ['learning', 'approval', 'sandbox-runner', 'executor', 'planner'] as const;
/** One of the five services. */
export type ServiceName = (typeof SERVICES)[number];

/** The environment variable that sets a service's HTTP port, and its default. */
export const PORT_SETTINGS: Record<ServiceName, { variable: string; defaultPort: number }> = {
  planner: { variable: 'TANDEM_PLANNER_PORT', defaultPort: 7101 },
  approval: { variable: 'TANDEM_APPROVAL_PORT', defaultPort: 7102 },
  executor: { variable: 'TANDEM_EXECUTOR_PORT', defaultPort: 7103 },
  'sandbox-runner': { variable: 'TANDEM_SANDBOX_PORT', defaultPort: 7104 },
  learning: { variable: 'TANDEM_LEARNING_PORT', defaultPort: 7105 },
};

/** The entry point of a service. */
export function serviceEntry(service: ServiceName): string {
  return fileURLToPath(new URL(`../../../services/${service}/src/main.ts`, import.meta.url));
}
