import { ErrorCodes, JsonValue, TOOL_RESULT_MAX_DEPTH, TandemError, rawJsonDepth } from '@tandem/contracts';
import { z } from 'zod';
import type { HttpRunner } from '../deps.js';
import { scrubSecrets, type SecretStore } from '../secrets.js';

/** The subset of the SSRF-safe client the runner needs. */
export interface HttpClient {
  request(input: {
    method: string;
    url: string;
    headers: Array<[string, string]>;
    body?: string;
    signal?: AbortSignal;
  }): Promise<{
    status: number;
    headers: Record<string, string>;
    body: string;
    truncated: boolean;
    finalUrl: string;
  }>;
}

const HttpArguments = z.object({
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']),
  url: z.string(),
  headers: z
    .array(z.object({ name: z.string(), value: z.string().optional(), secret: z.string().optional() }))
    .optional(),
  body: z.string().optional(),
});

/** Response headers worth keeping in a step result (never cookies or auth material). */
const KEPT_HEADERS = new Set([
  'content-type',
  'content-length',
  'location',
  'etag',
  'last-modified',
  'retry-after',
]);

/**
 * Runs `http_request` steps: secret references in headers are resolved here, at execution, from the
 * executor's store (they are never in a plan, a prompt or a log); non-idempotent methods carry the step id
 * as `Idempotency-Key`; any secret value the remote side echoes back is scrubbed from the stored result.
 */
export function createHttpRunner(deps: { client: HttpClient; secrets: SecretStore }): HttpRunner {
  return {
    async run({ stepId, arguments: raw }) {
      const parsed = HttpArguments.safeParse(raw);
      if (!parsed.success) {
        throw new TandemError(ErrorCodes.TOOL_INVALID_ARGUMENTS, 'http_request arguments are malformed');
      }
      const args = parsed.data;
      const headers: Array<[string, string]> = [];
      for (const header of args.headers ?? []) {
        if (header.secret !== undefined) {
          const value = deps.secrets.resolve(header.secret);
          if (value === undefined) {
            throw new TandemError(
              ErrorCodes.HTTP_REQUEST_FAILED,
              `header ${header.name} names the secret ${header.secret}, which the executor's store does not have`,
            );
          }
          headers.push([header.name, value]);
        } else {
          headers.push([header.name, header.value ?? '']);
        }
      }
      if (
        !['GET', 'HEAD'].includes(args.method) &&
        !headers.some(([name]) => name.toLowerCase() === 'idempotency-key')
      ) {
        headers.push(['Idempotency-Key', stepId]);
      }
      const response = await deps.client.request({
        method: args.method,
        url: args.url,
        headers,
        ...(args.body === undefined ? {} : { body: args.body }),
      });
      const secrets = deps.secrets.values();
      const kept: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) {
        if (KEPT_HEADERS.has(name.toLowerCase())) kept[name.toLowerCase()] = scrubSecrets(value, secrets);
      }
      const body = scrubSecrets(response.body, secrets);
      let json: JsonValue | null = null;
      // JSON nested deeper than a tool result may be is kept as text only: the result travels in step
      // events, which the bus would refuse. Measured on the raw text, before anything is parsed.
      if (
        (kept['content-type'] ?? '').includes('json') &&
        !response.truncated &&
        rawJsonDepth(body, TOOL_RESULT_MAX_DEPTH) <= TOOL_RESULT_MAX_DEPTH
      ) {
        try {
          const value = JsonValue.safeParse(JSON.parse(body));
          json = value.success ? value.data : null;
        } catch {
          json = null;
        }
      }
      return {
        status: response.status,
        headers: kept,
        body,
        truncated: response.truncated,
        json,
        url: scrubSecrets(response.finalUrl, secrets),
      };
    },
  };
}
