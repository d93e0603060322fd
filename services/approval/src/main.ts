import {
  createRecordedModelSelector,
  createServiceRuntime,
  loadConfigOrExit,
  loadSelectorConfigOrExit,
  onShutdown,
} from '@tandem/service-kit';
import { createApproval } from './app.js';
import { ApprovalConfig } from './config.js';
import { modelRiskOpinion } from './risk-opinion.js';

// Composition root: config -> logger -> bus and db -> start -> drain on SIGTERM.
const config = loadConfigOrExit(ApprovalConfig, process.env, 'approval');
const runtime = await createServiceRuntime({ service: 'approval', config });
const opinion = config.TANDEM_APPROVAL_RISK_OPINION
  ? modelRiskOpinion(
      await createRecordedModelSelector(runtime, loadSelectorConfigOrExit(process.env, 'approval')),
      runtime.log.child({ component: 'risk-opinion' }),
      config.TANDEM_APPROVAL_RISK_OPINION_TIMEOUT_MS,
    )
  : undefined;
await createApproval({ runtime, config, ...(opinion ? { opinion } : {}) });
await runtime.listen(config.TANDEM_APPROVAL_PORT, config.TANDEM_HTTP_HOST);
onShutdown(runtime.log, runtime.stop);
