import { createServiceRuntime, loadConfigOrExit, onShutdown } from '@tandem/service-kit';
import { createLearning } from './app.js';
import { LearningConfig } from './config.js';

// Composition root: config -> logger -> bus and db -> start -> drain on SIGTERM.
const config = loadConfigOrExit(LearningConfig, process.env, 'learning');
const runtime = await createServiceRuntime({ service: 'learning', config });
await createLearning({ runtime, config });
await runtime.listen(config.TANDEM_LEARNING_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
