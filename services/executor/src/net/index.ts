/** The executor's outbound network access: an SSRF-safe HTTP client for `http_request`. */
export { createSafeHttpClient, systemResolver } from './safe-http.js';
export type {
  OversizeResponse,
  ResolvedAddress,
  Resolver,
  SafeHttpClient,
  SafeHttpClientOptions,
  SafeHttpRequest,
  SafeHttpResponse,
} from './safe-http.js';
