/**
 * Prints the labelled approval scenarios under a policy: `pnpm --filter @tandem/approval scenarios`
 * (the shipped default policy) or `npx tsx eval/scenario-report.ts path/to/policy.yaml`.
 * Exits non-zero when a risky step is auto-approved or an outcome differs from its label's expectation.
 */
import { loadPolicy } from '../src/policy-file.js';
import { formatScenarioReport, runScenarios } from './scenarios.js';

const loaded = loadPolicy(process.argv[2]);
const run = runScenarios(loaded.policy);
console.log(`policy ${loaded.version} (${loaded.origin}, sha256 ${loaded.hash.slice(0, 12)})\n`);
console.log(formatScenarioReport(run));
if (run.totals.riskyAutoApproved > 0 || run.totals.unexpected.length > 0) process.exitCode = 1;
