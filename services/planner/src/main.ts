import {
  createRecordedModelClients,
  createServiceRuntime,
  loadConfigOrExit,
  loadModelsConfigOrExit,
  onShutdown,
} from '@tandem/service-kit';
import { createPlanner } from './app.js';
import { PlannerConfig } from './config.js';

// Composition root: config -> logger -> bus and db -> start -> drain on SIGTERM.
const config = loadConfigOrExit(PlannerConfig, process.env, 'planner');
const modelsConfig = loadModelsConfigOrExit(process.env, 'planner');
const runtime = await createServiceRuntime({ service: 'planner', config });
const models = createRecordedModelClients(runtime, modelsConfig);
await createPlanner({ runtime, config, planningModel: models.planning });
await runtime.listen(config.TANDEM_PLANNER_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
