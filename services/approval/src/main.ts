import { createServiceRuntime, loadConfigOrExit, onShutdown } from '@tandem/service-kit';
import { createApproval } from './app.js';
import { ApprovalConfig } from './config.js';

// Composition root: config -> logger -> bus and db -> start -> drain on SIGTERM.
const config = loadConfigOrExit(ApprovalConfig, process.env, 'approval');
const runtime = await createServiceRuntime({ service: 'approval', config });
await createApproval({ runtime, config });
await runtime.listen(config.TANDEM_APPROVAL_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
