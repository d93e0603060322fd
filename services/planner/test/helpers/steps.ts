import { toolRegistry, type JsonValue } from '@tandem/contracts';
import type { ValidatedStep } from '../../src/domain/planning.js';

/** A validated step of a registry tool, as the plan checks produce it. */
export function step(
  key: string,
  tool: string,
  args: Record<string, JsonValue> = {},
  dependsOn: string[] = [],
): ValidatedStep {
  const definition = toolRegistry.get(tool);
  if (definition === undefined) throw new Error(`no tool ${tool}`);
  return { key, tool: definition, arguments: args, dependsOn, rationale: `why ${key}` };
}
