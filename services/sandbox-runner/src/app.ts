import { SandboxRunRequested } from '@tandem/contracts';
import { Counter, Histogram, type ServiceRuntime } from '@tandem/service-kit';
import type { SandboxRunnerConfig } from './config.js';
import { handleRunRequested, RUN_REQUESTED_CONSUMER } from './handlers/run-requested.js';
import type { SandboxBackend } from './sandbox/index.js';

/** The sandbox-runner: runs code jobs from the bus in the sandbox backend and publishes their results. */
export async function createSandboxRunner(deps: {
  runtime: ServiceRuntime;
  config: SandboxRunnerConfig;
  backend: SandboxBackend;
}): Promise<void> {
  const { runtime, config, backend } = deps;
  const runs = new Counter({
    name: 'tandem_sandbox_runs_total',
    help: 'Sandbox jobs by language and outcome',
    labelNames: ['language', 'outcome'],
    registers: [runtime.metrics.registry],
  });
  const seconds = new Histogram({
    name: 'tandem_sandbox_run_duration_seconds',
    help: 'Sandbox job wall time',
    labelNames: ['language'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [runtime.metrics.registry],
  });
  const consumer = await runtime.consume({
    durable: RUN_REQUESTED_CONSUMER,
    subject: SandboxRunRequested.subjectSuffix,
    schema: SandboxRunRequested.envelope,
    messageId: (envelope) => envelope.id,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: config.TANDEM_SANDBOX_CONCURRENCY,
    ackWaitMs: config.TANDEM_SANDBOX_MAX_TIMEOUT_MS + 30_000,
    handle: (envelope, context) =>
      handleRunRequested(
        {
          db: runtime.db,
          prefix: config.TANDEM_SUBJECT_PREFIX,
          backend,
          ceilings: {
            maxTimeoutMs: config.TANDEM_SANDBOX_MAX_TIMEOUT_MS,
            maxOutputBytes: config.TANDEM_SANDBOX_MAX_OUTPUT_BYTES,
          },
          kick: runtime.kick,
          onRun: (result, language) => {
            runs.inc({ language, outcome: result.outcome });
            seconds.observe({ language }, result.durationMs / 1000);
          },
        },
        envelope,
        context,
      ),
  });
  runtime.onStop(() => consumer.stop());
}
