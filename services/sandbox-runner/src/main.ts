import { createServiceRuntime, loadConfigOrExit, onShutdown } from '@tandem/service-kit';
import { createSandboxRunner } from './app.js';
import { SandboxRunnerConfig } from './config.js';
import { createConfiguredBackend } from './backend.js';

// Composition root: config -> logger -> bus and db -> start -> drain on SIGTERM.
const config = loadConfigOrExit(SandboxRunnerConfig, process.env, 'sandbox-runner');
const backend = createConfiguredBackend(config, config);
// A runner that cannot isolate jobs does not start: there is no weaker backend to fall back to silently.
const startCheck = await backend.check();
if (!startCheck.ok) {
  process.stderr.write(
    `sandbox-runner: the ${backend.name} backend cannot run jobs here, so the runner does not start:\n` +
      startCheck.problems.map((problem) => `  - ${problem}\n`).join('') +
      `Install bubblewrap (apt-get install bubblewrap) or point TANDEM_SANDBOX_BWRAP_PATH at it. ` +
      `Only if jobs need no isolation from this host: choose the weaker backend explicitly with ` +
      `TANDEM_SANDBOX_BACKEND=process (no namespaces, no syscall filter).\n`,
  );
  process.exit(2);
}
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
if ((startCheck.warnings ?? []).length > 0)
  runtime.log.warn(
    { backend: backend.name, missing: startCheck.warnings },
    backend.name === 'process'
      ? 'the weaker "process" backend was chosen: jobs are NOT isolated from this host; these are not enforced'
      : 'the sandbox runs with weaker limits: these are not enforced',
  );
await createSandboxRunner({ runtime, config, backend });
// Boxes start ahead of the first job; the pool is emptied (and finished jobs' directories removed) at stop.
backend.warm();
runtime.onStop(() => backend.close());
await runtime.listen(config.TANDEM_SANDBOX_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
