/**
 * Rules for the request headers of `http_request`, shared by the planner (validation) and the executor
 * (which checks again after secrets are resolved into values). Messages never echo a header value.
 */

/** An HTTP header name: an RFC 9110 token. */
export const HTTP_HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/;

/** A secret's name in the executor's secret store, referenced by `http_request` headers. */
export const SECRET_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Longest header value, in characters. */
export const HTTP_HEADER_VALUE_MAX_CHARS = 8192;

/**
 * Headers the client sets itself or that change how the connection is framed or routed; a request may
 * not set them (lower case).
 */
export const FORBIDDEN_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-connection',
  'proxy-authenticate',
  'accept-encoding',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'http2-settings',
]);

/** Headers that carry credentials: their value must come from a secret, never be written in a plan. */
export const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(['authorization', 'cookie']);

/** Why a header name is refused, or null when it may be sent. */
export function headerNameProblem(name: string): string | null {
  if (!HTTP_HEADER_NAME.test(name)) return "is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)";
  const lower = name.toLowerCase();
  if (FORBIDDEN_REQUEST_HEADERS.has(lower) || lower.startsWith('proxy-') || lower.startsWith('sec-'))
    return 'may not be set: the client controls it';
  return null;
}

/** Why a header value is refused (CR, LF, NUL or other control characters, too long), or null. */
export function headerValueProblem(value: string): string | null {
  if (value.length > HTTP_HEADER_VALUE_MAX_CHARS)
    return `has a value longer than ${HTTP_HEADER_VALUE_MAX_CHARS} characters`;
  for (let index = 0; index < value.length; index += 1) {
    const code = value.charCodeAt(index);
    // Tab is the only control character a field value may contain (RFC 9110 field-value).
    if ((code < 0x20 && code !== 0x09) || code === 0x7f)
      return 'has a value with CR, LF or control characters';
    if (code > 0xff) return 'has a value with characters outside ISO-8859-1';
  }
  return null;
}
