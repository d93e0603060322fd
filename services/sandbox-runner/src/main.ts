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
      return {
        name: `sandbox:${backend.name}`,
        ok: check.ok,
        ...(check.ok ? {} : { detail: check.problems.join('; ') }),
      };
    },
  ],
});
const check = await backend.check();
if (!check.ok)
  runtime.log.error(
    { problems: check.problems },
    'the sandbox backend cannot run jobs; /readyz reports not ready',
  );
await createSandboxRunner({ runtime, config, backend });
await runtime.listen(config.TANDEM_SANDBOX_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
