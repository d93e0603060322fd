import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PolicyError, loadedPolicy, type LoadedPolicy } from './domain/policy.js';

/** The shipped default policy (services/approval/policy/default.yaml). */
export const DEFAULT_POLICY_PATH = fileURLToPath(new URL('../policy/default.yaml', import.meta.url));

/** Reads and parses a policy file; undefined: the shipped default. Throws a PolicyError. */
export function loadPolicy(path: string | undefined): LoadedPolicy {
  const origin = path ?? DEFAULT_POLICY_PATH;
  let text: string;
  try {
    text = readFileSync(origin, 'utf8');
  } catch (error) {
    throw new PolicyError(
      `cannot read the policy file ${origin}: ${error instanceof Error ? error.message : String(error)}`,
      [],
      { cause: error },
    );
  }
  return loadedPolicy(text, origin);
}
