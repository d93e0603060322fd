import { createServiceRuntime, loadConfigOrExit, onShutdown } from '@tandem/service-kit';
import { createSandboxRunner } from './app.js';
import { SandboxRunnerConfig } from './config.js';
import { createConfiguredBackend } from './backend.js';

// Composition root: config -> logger -> bus and db -> start -> drain on SIGTERM.
const config = loadConfigOrExit(SandboxRunnerConfig, process.env, 'sandbox-runner');
const backend = createConfiguredBackend();
const runtime = await createServiceRuntime({
  service: 'sandbox-runner',
  config,
  readiness: [
    async () => {
      const check = await backend.check();
      const warnings = check.warnings ?? [];
      const detail = [...check.problems, ...warnings.map((warning) => `not enforced: ${warning}`)];
      return {
        name: `sandbox:${backend.name}`,
        ok: check.ok,
        ...(detail.length === 0 ? {} : { detail: detail.join('; ') }),
      };
    },
  ],
});
const check = await backend.check();
if ((check.warnings ?? []).length > 0)
  runtime.log.warn(
    { missing: check.warnings },
    'the sandbox runs with weaker limits: these are not enforced',
  );
if (!check.ok)
  runtime.log.error(
    { problems: check.problems },
    'the sandbox backend cannot run jobs; /readyz reports not ready',
  );
await createSandboxRunner({ runtime, config, backend });
await runtime.listen(config.TANDEM_SANDBOX_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
