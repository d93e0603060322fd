import {
  createRecordedModelSelector,
  createServiceRuntime,
  loadConfigOrExit,
  loadSelectorConfigOrExit,
  onShutdown,
} from '@tandem/service-kit';
import { createPlanner } from './app.js';
import { PlannerConfig } from './config.js';
import { estimateStepCostUsd } from './domain/cost.js';

// Composition root: config -> logger -> bus and db -> start -> drain on SIGTERM.
const config = loadConfigOrExit(PlannerConfig, process.env, 'planner');
const selectorConfig = loadSelectorConfigOrExit(process.env, 'planner');
const runtime = await createServiceRuntime({ service: 'planner', config });
const selector = await createRecordedModelSelector(runtime, selectorConfig);
const codePrices = selector.candidates('code')[0];
await createPlanner({
  runtime,
  config,
  planningModel: {
    complete: (request) => selector.complete({ ...request, role: 'planning', toolChoice: 'required' }),
  },
  estimateStepCostUsd: (step) => estimateStepCostUsd(step, codePrices),
});
await runtime.listen(config.TANDEM_PLANNER_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
