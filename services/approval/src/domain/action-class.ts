import type { PlannedStep } from '@tandem/contracts';

/** The http_request methods that only read (trust class `http_request:read`). */
const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

/** The function-calling name of the HTTP tool, whose trust is split by method. */
export const HTTP_REQUEST_TOOL = 'http_request';

/** Whether an http_request step's method only reads (GET or HEAD exactly as the tool's schema spells them). */
export function isReadMethod(method: unknown): boolean {
  return typeof method === 'string' && READ_METHODS.has(method);
}

/**
 * The class an agent earns trust in for a step: the tool name, except that http_request is split into
 * `http_request:read` (GET, HEAD) and `http_request:write` (every other method, and a method that is
 * missing or not one of the schema's spellings: unknown counts as the riskier class).
 */
export function actionClassOf(step: Pick<PlannedStep, 'tool' | 'arguments'>): string {
  if (step.tool !== HTTP_REQUEST_TOOL) return step.tool;
  return isReadMethod(step.arguments['method']) ? `${HTTP_REQUEST_TOOL}:read` : `${HTTP_REQUEST_TOOL}:write`;
}
