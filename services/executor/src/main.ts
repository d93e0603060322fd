import { readFileSync } from 'node:fs';
import {
  createRecordedModelSelector,
  createServiceRuntime,
  loadConfigOrExit,
  loadSelectorConfigOrExit,
  onShutdown,
} from '@tandem/service-kit';
import { createExecutor } from './app.js';
import { ExecutorConfig } from './config.js';
import { createSafeHttpClient } from './net/index.js';
import { SecretsConfigError, secretStoreFromEnv } from './secrets.js';

// Composition root: config -> logger -> bus and db -> start -> drain on SIGTERM.
const config = loadConfigOrExit(ExecutorConfig, process.env, 'executor');
const selectorConfig = loadSelectorConfigOrExit(process.env, 'executor');
let secrets;
try {
  secrets = secretStoreFromEnv(process.env, (path) => readFileSync(path, 'utf8'));
} catch (error) {
  if (!(error instanceof SecretsConfigError)) throw error;
  process.stderr.write(`executor: ${error.message}\n`);
  process.exit(2);
}
const runtime = await createServiceRuntime({ service: 'executor', config });
const selector = await createRecordedModelSelector(runtime, selectorConfig);
await createExecutor({
  runtime,
  config,
  codeModel: { complete: (request) => selector.complete({ ...request, role: 'code' }) },
  httpClient: createSafeHttpClient({
    allowHosts: config.TANDEM_HTTP_ALLOW_HOSTS,
    allowHttp: config.TANDEM_HTTP_ALLOW_HTTP,
    allowPrivateCidrs: config.TANDEM_HTTP_ALLOW_PRIVATE_CIDRS,
    timeoutMs: config.TANDEM_HTTP_TIMEOUT_MS,
    maxResponseBytes: config.TANDEM_HTTP_MAX_RESPONSE_BYTES,
  }),
  secrets,
});
await runtime.listen(config.TANDEM_EXECUTOR_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
