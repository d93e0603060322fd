import { ModelsConfigError, createModelClients, modelsConfigFromEnv } from '@tandem/models';
import {
  createModelCallRecorder,
  createServiceRuntime,
  loadConfigOrExit,
  onShutdown,
} from '@tandem/service-kit';
import { createExecutor } from './app.js';
import { ExecutorConfig } from './config.js';

// Composition root: config -> logger -> bus and db -> start -> drain on SIGTERM.
const config = loadConfigOrExit(ExecutorConfig, process.env, 'executor');
let modelsConfig: ReturnType<typeof modelsConfigFromEnv>;
try {
  modelsConfig = modelsConfigFromEnv(process.env);
} catch (error) {
  if (!(error instanceof ModelsConfigError)) throw error;
  process.stderr.write(`executor: ${error.message}\n`);
  process.exit(2);
}
const runtime = await createServiceRuntime({ service: 'executor', config });
const recorder = createModelCallRecorder({
  db: runtime.db,
  log: runtime.log,
  registry: runtime.metrics.registry,
});
const models = createModelClients(modelsConfig, { onCall: recorder.onCall });
runtime.onStop(recorder.flush);
await createExecutor({ runtime, config, codeModel: models.code });
await runtime.listen(config.TANDEM_EXECUTOR_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
