/**
 * An HTTP client that cannot be pointed at the machine it runs on, its private network or a cloud
 * metadata service (SSRF), whatever the URL, the DNS answers or the redirects say.
 *
 * For every hop (the first request and each redirect): the URL passes `checkUrl` (scheme, no
 * credentials, allow-listed host, no forbidden IP literal in any notation); the host is resolved once and
 * every address must be allowed (one forbidden address refuses the request: no picking another); the
 * connection then goes to exactly the address that was checked, through a `lookup` that returns it
 * without asking DNS again, so a rebinding DNS server cannot swap it; TLS SNI and the Host header keep
 * the hostname. The socket's remote address is compared with the checked one as a last guard.
 *
 * Header values are never logged, echoed in errors or kept in error details: callers resolve secrets
 * into them. Only node: builtins.
 */
import { promises as dns } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import {
  ErrorCodes,
  TandemError,
  checkUrl,
  classifyAddress,
  headerNameProblem,
  headerValueProblem,
  isAddressAllowed as isAddressAllowedByPolicy,
  parseAllowHosts,
  parseCidr,
  parseIp,
  type UrlCheck,
  type UrlPolicy,
} from '@tandem/contracts';

/** One address a name resolves to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a hostname to every address it has (injectable so tests can map names to loopback). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** What to do with a response body over `maxResponseBytes`. */
export type OversizeResponse = 'truncate' | 'fail';

/** Settings of a safe client; the policy comes from the executor's config. */
export interface SafeHttpClientOptions {
  /** Exact hosts, IP literals or `*.example.com` (`TANDEM_HTTP_ALLOW_HOSTS`); empty refuses everything. */
  allowHosts: readonly string[];
  /** Plain http is refused unless true. */
  allowHttp: boolean;
  /**
   * Private ranges the operator opens, e.g. `['10.20.0.0/16']` for an internal API (tests use
   * `['127.0.0.1/32']`). Metadata, unspecified, multicast and broadcast addresses stay refused.
   */
  allowPrivateCidrs?: readonly string[];
  /** Default: `dns.promises.lookup(hostname, { all: true })`. */
  resolve?: Resolver;
  /** Replaces the address check for resolved addresses (default: public, or inside `allowPrivateCidrs`). */
  isAddressAllowed?: (address: string) => boolean;
  /** Redirects followed before failing (default 5; 0 follows none and returns the 3xx response). */
  maxRedirects?: number;
  /** Deadline for the whole request: DNS, connects, redirects and body (default 10 s). */
  timeoutMs?: number;
  /** Body bytes kept (default 1 MiB); reading stops there. */
  maxResponseBytes?: number;
  /** `truncate` (default) returns the first bytes with `truncated: true`; `fail` throws HTTP.RESPONSE_TOO_LARGE. */
  onResponseTooLarge?: OversizeResponse;
  /** Sent unless the request sets its own. */
  userAgent?: string;
  /** Extra trusted CA certificates (PEM), e.g. an internal CA. */
  ca?: string | readonly string[];
}

/** One request; `headers` may hold resolved secrets and are treated as such. */
export interface SafeHttpRequest {
  method: string;
  url: string;
  headers: ReadonlyArray<readonly [string, string]>;
  body?: string;
  signal?: AbortSignal;
}

/** The final response after redirects. `address` is the IP the last connection went to. */
export interface SafeHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  truncated: boolean;
  finalUrl: string;
  address: string;
  redirects: number;
}

/** An SSRF-safe HTTP client. */
export interface SafeHttpClient {
  request(input: SafeHttpRequest): Promise<SafeHttpResponse>;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Request headers kept when a redirect leaves the origin; everything else may carry credentials. */
const CROSS_ORIGIN_SAFE = new Set([
  'accept',
  'accept-language',
  'user-agent',
  'content-type',
  'content-language',
]);

/** The default resolver: the system's, every address, in the order it returns them. */
export const systemResolver: Resolver = async (hostname) => {
  const answers = await dns.lookup(hostname, { all: true, verbatim: true });
  return answers.map((answer) => ({ address: answer.address, family: answer.family === 6 ? 6 : 4 }));
};

type Outgoing = Array<[string, string]>;

interface Hop {
  url: URL;
  method: string;
  headers: Outgoing;
  body: string | undefined;
}

type HopResult =
  | { kind: 'redirect'; status: number; location: string }
  | {
      kind: 'response';
      status: number;
      headers: Record<string, string>;
      body: Buffer;
      truncated: boolean;
      address: string;
    };

function refused(message: string, reason: string): TandemError {
  return new TandemError(ErrorCodes.TOOL_URL_REJECTED, message, { details: { reason } });
}

function failed(message: string, reason: string, retryable: boolean, cause?: unknown): TandemError {
  return new TandemError(ErrorCodes.HTTP_REQUEST_FAILED, message, {
    retryable,
    details: { reason },
    ...(cause === undefined ? {} : { cause }),
  });
}

function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Validates caller headers (names and values, never echoing a value) and adds the client's own. */
function outgoingHeaders(input: SafeHttpRequest, userAgent: string): Outgoing {
  const headers: Outgoing = [];
  for (const [name, value] of input.headers) {
    const nameProblem = headerNameProblem(name);
    if (nameProblem !== null)
      throw new TandemError(
        ErrorCodes.TOOL_HEADER_REJECTED,
        `header ${JSON.stringify(name.slice(0, 64))} ${nameProblem}`,
      );
    const valueProblem = headerValueProblem(value);
    if (valueProblem !== null)
      throw new TandemError(ErrorCodes.TOOL_HEADER_REJECTED, `header ${name} ${valueProblem}`);
    headers.push([name, value]);
  }
  if (!headers.some(([name]) => name.toLowerCase() === 'user-agent')) headers.push(['User-Agent', userAgent]);
  return headers;
}

function toNodeHeaders(headers: Outgoing, body: string | undefined): http.OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    const key = name.toLowerCase();
    const existing = out[key];
    out[key] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  // Compressed bodies would reach the caller as bytes it cannot read; ask for none.
  out['accept-encoding'] = 'identity';
  if (body !== undefined) out['content-length'] = String(Buffer.byteLength(body, 'utf8'));
  return out;
}

/** Creates a client bound to the operator's policy. Throws at once on a malformed allow-list or CIDR. */
export function createSafeHttpClient(options: SafeHttpClientOptions): SafeHttpClient {
  const hosts = parseAllowHosts(options.allowHosts);
  if (!hosts.ok) throw new Error(`allowHosts has entries that are not hosts: ${hosts.invalid.join(', ')}`);
  const cidrs = [...(options.allowPrivateCidrs ?? [])];
  const badCidrs = cidrs.filter((cidr) => parseCidr(cidr) === null);
  if (badCidrs.length > 0) throw new Error(`allowPrivateCidrs has malformed entries: ${badCidrs.join(', ')}`);
  const policy: UrlPolicy = {
    allowHosts: hosts.hosts,
    allowHttp: options.allowHttp,
    allowPrivateCidrs: cidrs,
  };
  const resolve = options.resolve ?? systemResolver;
  const addressAllowed =
    options.isAddressAllowed ?? ((address: string) => isAddressAllowedByPolicy(address, cidrs));
  const maxRedirects = options.maxRedirects ?? 5;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;
  const oversize = options.onResponseTooLarge ?? 'truncate';
  const userAgent = options.userAgent ?? 'tandem-executor';
  const ca =
    options.ca === undefined ? undefined : typeof options.ca === 'string' ? options.ca : [...options.ca];

  /** Checks the URL and resolves it; returns the one address the connection must use. */
  async function destination(
    url: URL,
    signal: AbortSignal,
  ): Promise<{ check: Extract<UrlCheck, { ok: true }>; pinned: ResolvedAddress }> {
    const check = checkUrl(url.href, policy);
    if (!check.ok) throw refused(`http_request refused: ${check.reason}`, check.code);
    let addresses: ResolvedAddress[];
    if (check.ip !== null) {
      addresses = [{ address: check.ip, family: net.isIP(check.ip) === 6 ? 6 : 4 }];
    } else {
      try {
        addresses = await abortable(resolve(check.hostname), signal);
      } catch (error) {
        if (signal.aborted) throw error;
        const code = (error as { code?: unknown }).code;
        throw failed(
          `could not resolve ${check.hostname}${typeof code === 'string' ? ` (${code})` : ''}`,
          'dns',
          code !== 'ENOTFOUND',
          error,
        );
      }
    }
    if (addresses.length === 0) throw failed(`${check.hostname} has no addresses`, 'dns', false);
    for (const answer of addresses) {
      const family = net.isIP(answer.address);
      if (family === 0 || family !== answer.family || !addressAllowed(answer.address)) {
        throw refused(
          `http_request refused: ${check.hostname} resolves to a ${classifyAddress(answer.address)} address, which http_request may not reach`,
          'forbidden_address',
        );
      }
    }
    const pinned = addresses[0];
    if (!pinned) throw failed(`${check.hostname} has no addresses`, 'dns', false);
    return { check, pinned };
  }

  /**
   * One request/response exchange on a fresh connection to the pinned address. Network failures reject
   * with Node's error (classified by the caller, which knows whether the deadline passed); policy and
   * size failures with a TandemError.
   */
  async function exchange(hop: Hop, signal: AbortSignal, follow: boolean): Promise<HopResult> {
    const { check, pinned } = await destination(hop.url, signal);
    const secure = hop.url.protocol === 'https:';
    // Returns the checked address whatever name is asked for: the socket never consults DNS.
    const lookup: net.LookupFunction = (_hostname, lookupOptions, callback) => {
      if (lookupOptions.all) callback(null, [{ address: pinned.address, family: pinned.family }]);
      else callback(null, pinned.address, pinned.family);
    };
    const requestOptions: https.RequestOptions = {
      protocol: hop.url.protocol,
      host: check.ip ?? check.hostname,
      port: hop.url.port === '' ? (secure ? 443 : 80) : Number(hop.url.port),
      path: `${hop.url.pathname}${hop.url.search}`,
      method: hop.method,
      headers: toNodeHeaders(hop.headers, hop.body),
      lookup,
      family: pinned.family,
      // A fresh connection per hop: a pooled socket may have been opened to another address.
      agent: false,
      signal,
      ...(secure && check.ip === null ? { servername: check.hostname } : {}),
      ...(secure && ca !== undefined ? { ca } : {}),
    };
    return new Promise<HopResult>((resolvePromise, reject) => {
      let settled = false;
      const settle = (action: () => void) => {
        if (settled) return;
        settled = true;
        action();
      };
      const request = (secure ? https : http).request(requestOptions);
      request.on('socket', (socket) => {
        // A last guard, first in line so nothing is written to a socket that went elsewhere.
        socket.prependOnceListener('connect', () => {
          if (!sameAddress(socket.remoteAddress, pinned.address)) {
            const error = refused(
              'http_request refused: the connection went to an address that was not checked',
              'address_mismatch',
            );
            settle(() => reject(error));
            request.destroy(error);
          }
        });
      });
      request.on('error', (error) => settle(() => reject(error)));
      request.on('response', (response) => {
        response.on('error', (error) => settle(() => reject(error)));
        const status = response.statusCode ?? 0;
        const location = response.headers.location;
        if (follow && REDIRECTS.has(status) && typeof location === 'string' && location !== '') {
          // The body of a redirect is never read.
          response.destroy();
          settle(() => resolvePromise({ kind: 'redirect', status, location }));
          return;
        }
        const headers = flattenHeaders(response.headers);
        const declared = Number(response.headers['content-length']);
        if (oversize === 'fail' && Number.isFinite(declared) && declared > maxResponseBytes) {
          response.destroy();
          settle(() =>
            reject(
              new TandemError(
                ErrorCodes.HTTP_RESPONSE_TOO_LARGE,
                `the response is ${declared} bytes; the limit is ${maxResponseBytes}`,
              ),
            ),
          );
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        const finish = (truncated: boolean) =>
          settle(() =>
            resolvePromise({
              kind: 'response',
              status,
              headers,
              body: Buffer.concat(chunks, size),
              truncated,
              address: pinned.address,
            }),
          );
        response.on('data', (chunk: Buffer) => {
          if (settled) return;
          const room = maxResponseBytes - size;
          if (chunk.length <= room) {
            chunks.push(chunk);
            size += chunk.length;
            return;
          }
          // Over the cap: keep what fits (or fail) and stop reading; the rest is never downloaded.
          response.destroy();
          if (oversize === 'fail') {
            settle(() =>
              reject(
                new TandemError(
                  ErrorCodes.HTTP_RESPONSE_TOO_LARGE,
                  `the response is over ${maxResponseBytes} bytes`,
                ),
              ),
            );
            return;
          }
          chunks.push(chunk.subarray(0, room));
          size += room;
          finish(true);
        });
        response.on('end', () => finish(false));
        response.on('close', () => {
          if (!response.complete)
            settle(() =>
              reject(Object.assign(new Error('the connection closed early'), { code: 'ECONNRESET' })),
            );
        });
      });
      if (hop.body !== undefined) request.end(hop.body, 'utf8');
      else request.end();
    });
  }

  return {
    async request(input) {
      const method = input.method.toUpperCase();
      if (!METHODS.has(method))
        throw new TandemError(
          ErrorCodes.TOOL_INVALID_ARGUMENTS,
          `method ${JSON.stringify(input.method.slice(0, 16))} is not supported`,
        );
      if (input.body !== undefined && (method === 'GET' || method === 'HEAD'))
        throw new TandemError(ErrorCodes.TOOL_SEMANTIC, `${method} requests have no body`);
      const first = checkUrl(input.url, policy);
      if (!first.ok) throw refused(`http_request refused: ${first.reason}`, first.code);

      const controller = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort(new Error('timeout'));
      }, timeoutMs);
      const onCallerAbort = () => controller.abort(input.signal?.reason);
      if (input.signal?.aborted) controller.abort(input.signal.reason);
      else input.signal?.addEventListener('abort', onCallerAbort, { once: true });

      let hop: Hop = { url: first.url, method, headers: outgoingHeaders(input, userAgent), body: input.body };
      let redirects = 0;
      try {
        for (;;) {
          const result = await exchange(hop, controller.signal, maxRedirects > 0);
          if (result.kind === 'response') {
            return {
              status: result.status,
              headers: result.headers,
              body: hop.method === 'HEAD' ? '' : new TextDecoder('utf-8').decode(result.body),
              truncated: result.truncated,
              finalUrl: hop.url.href,
              address: result.address,
              redirects,
            };
          }
          if (redirects >= maxRedirects)
            throw failed(`more than ${maxRedirects} redirects`, 'too_many_redirects', false);
          redirects += 1;
          let next: URL;
          try {
            next = new URL(result.location, hop.url);
          } catch {
            throw refused('http_request refused: a redirect pointed at an invalid URL', 'invalid_url');
          }
          hop = redirectHop(hop, next, result.status);
        }
      } catch (error) {
        if (error instanceof TandemError) throw error;
        if (timedOut)
          throw failed(
            `the request took longer than ${timeoutMs} ms`,
            'timeout',
            IDEMPOTENT.has(method),
            error,
          );
        if (input.signal?.aborted) throw failed('the request was cancelled', 'aborted', false, error);
        const code = (error as { code?: unknown }).code;
        const tls = typeof code === 'string' && (code.startsWith('ERR_TLS') || code.includes('CERT'));
        throw failed(
          `the request failed${typeof code === 'string' ? ` (${code})` : ''}`,
          tls ? 'tls' : 'connection',
          !tls && IDEMPOTENT.has(method),
          error,
        );
      } finally {
        clearTimeout(timer);
        input.signal?.removeEventListener('abort', onCallerAbort);
      }
    },
  };
}

/**
 * The next hop of a redirect: 303 turns anything but HEAD into GET, 301/302 turn POST into GET (as
 * browsers do), 307/308 keep method and body. A body dropped takes its Content-* headers with it; a
 * redirect to another origin drops every header that might carry credentials.
 */
function redirectHop(previous: Hop, next: URL, status: number): Hop {
  let method = previous.method;
  if (status === 303 && method !== 'HEAD') method = 'GET';
  if ((status === 301 || status === 302) && method === 'POST') method = 'GET';
  const body = method === previous.method ? previous.body : undefined;
  const crossOrigin = next.origin !== previous.url.origin;
  const headers = previous.headers.filter(([name]) => {
    const lower = name.toLowerCase();
    if (body === undefined && lower.startsWith('content-')) return false;
    return !crossOrigin || CROSS_ORIGIN_SAFE.has(lower);
  });
  return { url: next, method, headers, body };
}

/** Whether two textual IP addresses are the same address (IPv6 has several spellings). */
function sameAddress(actual: string | undefined, expected: string): boolean {
  if (actual === undefined) return false;
  if (actual === expected) return true;
  const left = parseIp(actual);
  const right = parseIp(expected);
  return (
    left !== null &&
    right !== null &&
    left.family === right.family &&
    left.bytes.join('.') === right.bytes.join('.')
  );
}

/** Races a promise against an abort signal. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted)
    return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolvePromise(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
