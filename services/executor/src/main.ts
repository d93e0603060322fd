import {
  createRecordedModelClients,
  createServiceRuntime,
  loadConfigOrExit,
  loadModelsConfigOrExit,
  onShutdown,
} from '@tandem/service-kit';
import { createExecutor } from './app.js';
import { ExecutorConfig } from './config.js';

// Composition root: config -> logger -> bus and db -> start -> drain on SIGTERM.
const config = loadConfigOrExit(ExecutorConfig, process.env, 'executor');
const modelsConfig = loadModelsConfigOrExit(process.env, 'executor');
const runtime = await createServiceRuntime({ service: 'executor', config });
const models = createRecordedModelClients(runtime, modelsConfig);
await createExecutor({ runtime, config, codeModel: models.code });
await runtime.listen(config.TANDEM_EXECUTOR_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
