import { createHash } from 'node:crypto';
import type { JsonValue } from './json.js';
import { referencedStepKeysDeep } from './validation.js';

/*
 * What an approval is bound to. The approval service (the one writer of decisions) stores, on each
 * approved ApprovalRequest row, the hash of the arguments it approved; the executor runs a step only when
 * the row says approved (or answered) for that very step of the active plan and the hash matches the
 * arguments it is about to run. An `approval.*` event only tells the executor to look: it is never the
 * decision itself (docs/architecture/security.md).
 */

/** JSON with object keys sorted (and `undefined` members dropped), so equal data hashes equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, child]) => child !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, child]) => `${JSON.stringify(key)}:${canonicalJson(child)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The hash a decision is bound to: sha256 (hex) of the canonical JSON of a step's arguments. */
export function argumentsHash(args: Readonly<Record<string, JsonValue>>): string {
  return createHash('sha256').update(canonicalJson(args), 'utf8').digest('hex');
}

/**
 * Tools whose arguments may reference earlier results without a second look: `respond`'s answer goes
 * back only to the task's own submitter (no effect outside the task), and an `ask_human` question is
 * for a human anyway (its answer is all it produces).
 */
const TEMPLATE_APPROVABLE_TOOLS: ReadonlySet<string> = new Set(['respond', 'ask_human']);

/**
 * Whether a step is approved with its resolved values: its arguments reference earlier results
 * (`{{steps.<key>...}}`) and its tool is not one of the above. Such a step is judged when the plan
 * arrives (a deny still rejects it at once) and decided when every step it references has completed,
 * with the values; the decision is bound to the resolved arguments.
 */
export function needsResolvedApproval(tool: string, args: Readonly<Record<string, JsonValue>>): boolean {
  if (TEMPLATE_APPROVABLE_TOOLS.has(tool)) return false;
  return referencedStepKeysDeep(args).length > 0;
}
