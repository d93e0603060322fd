/**
 * Where `http_request` may go. Pure (no DNS): the planner uses it to reject a plan early, the executor
 * runs the same checks again on every hop and on every resolved address (see services/executor net).
 *
 * Decisions:
 * - Only `https:` (and `http:` when the operator allows it); no credentials in URLs (use a header that
 *   references a secret).
 * - The host must be on the operator's allow-list (`TANDEM_HTTP_ALLOW_HOSTS`): exact names, IP literals,
 *   or `*.example.com` (any subdomain, not the apex). An empty list disables `http_request`. Any port.
 * - Loopback, private, CGNAT, link-local, metadata, unspecified, multicast, broadcast, reserved and
 *   documentation addresses are refused, in every form the WHATWG URL parser accepts (`0x7f000001`,
 *   `2130706433`, `127.1`, `0177.0.0.1`, `[::ffff:7f00:1]`) and inside IPv4-mapped, -compatible,
 *   NAT64 and 6to4 IPv6 addresses. An operator may open private ranges with `allowPrivateCidrs`;
 *   metadata, unspecified, multicast and broadcast addresses stay refused even then.
 * - `localhost`, `*.localhost`, cloud metadata names and single-label names are refused even when
 *   allow-listed: they exist only to reach the machine itself or its local network.
 */

/** Longest URL accepted, in characters. */
export const URL_MAX_CHARS = 2048;

/** What an address is, for the SSRF policy. Only `public` is reachable without an operator opt-in. */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'metadata'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'invalid';

/** Classes that no operator opt-in opens. */
const NEVER_ALLOWED: ReadonlySet<AddressClass> = new Set([
  'metadata',
  'unspecified',
  'multicast',
  'broadcast',
  'invalid',
]);

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Strict dotted-decimal IPv4 (no leading zeros, which some parsers read as octal). */
function parseIPv4(text: string): number[] | null {
  const match = IPV4.exec(text);
  if (!match) return null;
  const parts = match
    .slice(1, 5)
    .map((part) => (part.length > 1 && part.startsWith('0') ? -1 : Number(part)));
  return parts.every((part) => part >= 0 && part <= 255) ? parts : null;
}

/** IPv6 text (optionally in brackets, optionally with a dotted IPv4 tail) to 16 bytes; zones are refused. */
function parseIPv6(input: string): number[] | null {
  let text = input;
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  if (!text.includes(':') || text.includes('%')) return null;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = parseIPv4(last);
    if (!v4) return null;
    tail = v4;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseGroups = (part: string): number[] | null => {
    if (part === '') return [];
    const groups = part.split(':');
    const out: number[] = [];
    for (const group of groups) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return null;
      out.push(Number.parseInt(group, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0] ?? '');
  const rest = halves.length === 2 ? parseGroups(halves[1] ?? '') : [];
  if (!head || !rest) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...rest];
  } else groups = head;
  if (groups.length !== 8) return null;
  const bytes = groups.flatMap((group) => [group >> 8, group & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function classifyIPv4([a = 0, b = 0, c = 0, d = 0]: number[]): AddressClass {
  if (a === 0) return 'unspecified';
  if (a === 10) return 'private';
  if (a === 100 && (b & 0xc0) === 64) return b === 100 && c === 100 && d === 200 ? 'metadata' : 'private';
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return c === 169 && d === 254 ? 'metadata' : 'link-local';
  if (a === 172 && (b & 0xf0) === 16) return 'private';
  if (a === 192 && b === 168) return 'private';
  if (a === 192 && b === 0 && (c === 0 || c === 2)) return 'reserved';
  if (a === 192 && b === 88 && c === 99) return 'reserved';
  if (a === 198 && (b === 18 || b === 19)) return 'reserved';
  if (a === 198 && b === 51 && c === 100) return 'reserved';
  if (a === 203 && b === 0 && c === 113) return 'reserved';
  if (a >= 224 && a <= 239) return 'multicast';
  if (a === 255 && b === 255 && c === 255 && d === 255) return 'broadcast';
  if (a >= 240) return 'reserved';
  return 'public';
}

function allZero(bytes: number[], from: number, to: number): boolean {
  for (let index = from; index < to; index += 1) if (bytes[index] !== 0) return false;
  return true;
}

function classifyIPv6(bytes: number[]): AddressClass {
  const b = (index: number) => bytes[index] ?? 0;
  const embedded = (from: number) => classifyIPv4(bytes.slice(from, from + 4));
  if (allZero(bytes, 0, 16)) return 'unspecified';
  if (allZero(bytes, 0, 15) && b(15) === 1) return 'loopback';
  // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (SIIT translated): the IPv4 address decides.
  if (allZero(bytes, 0, 10) && b(10) === 0xff && b(11) === 0xff) return embedded(12);
  if (allZero(bytes, 0, 8) && b(8) === 0xff && b(9) === 0xff && b(10) === 0 && b(11) === 0)
    return embedded(12);
  // ::a.b.c.d (IPv4-compatible, deprecated): never legitimate, refused whatever it embeds.
  if (allZero(bytes, 0, 12)) {
    const inner = embedded(12);
    return inner === 'public' ? 'reserved' : inner;
  }
  // 64:ff9b::/96 (well-known NAT64 prefix) embeds the IPv4 destination; 64:ff9b:1::/48 is local-use.
  if (b(0) === 0 && b(1) === 0x64 && b(2) === 0xff && b(3) === 0x9b) {
    if (allZero(bytes, 4, 12)) return embedded(12);
    return 'reserved';
  }
  // 2002::/16 (6to4) embeds the IPv4 address of its gateway in bytes 2-5.
  if (b(0) === 0x20 && b(1) === 0x02) return embedded(2);
  if (
    b(0) === 0xfd &&
    b(1) === 0x00 &&
    b(2) === 0x0e &&
    b(3) === 0xc2 &&
    allZero(bytes, 4, 14) &&
    b(14) === 0x02 &&
    b(15) === 0x54
  )
    return 'metadata';
  if ((b(0) & 0xfe) === 0xfc) return 'private';
  if (b(0) === 0xfe && (b(1) & 0xc0) === 0x80) return 'link-local';
  if (b(0) === 0xfe && (b(1) & 0xc0) === 0xc0) return 'private';
  if (b(0) === 0xff) return 'multicast';
  // 2001::/23 (IETF assignments incl. Teredo), 2001:db8::/32 and 3fff::/20 (documentation).
  if (b(0) === 0x20 && b(1) === 0x01 && b(2) < 0x02) return 'reserved';
  if (b(0) === 0x20 && b(1) === 0x01 && b(2) === 0x0d && b(3) === 0xb8) return 'reserved';
  if (b(0) === 0x3f && b(1) === 0xff && (b(2) & 0xf0) === 0) return 'reserved';
  // Outside global unicast 2000::/3 nothing is allocated for the public internet.
  if ((b(0) & 0xe0) !== 0x20) return 'reserved';
  return 'public';
}

/** A parsed IP address: family and bytes (IPv4-mapped IPv6 addresses stay IPv6). */
export interface ParsedIp {
  family: 4 | 6;
  bytes: number[];
}

/** Parses a canonical IPv4 (dotted decimal) or IPv6 address (brackets allowed); null if it is neither. */
export function parseIp(text: string): ParsedIp | null {
  const v4 = parseIPv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIPv6(text);
  return v6 ? { family: 6, bytes: v6 } : null;
}

/** What kind of address `ip` is; anything that is not a plain IPv4 or IPv6 address is `invalid`. */
export function classifyAddress(ip: string): AddressClass {
  const parsed = parseIp(ip);
  if (!parsed) return 'invalid';
  return parsed.family === 4 ? classifyIPv4(parsed.bytes) : classifyIPv6(parsed.bytes);
}

/**
 * Whether an address must never be connected to without an operator opt-in: everything but public
 * unicast (loopback, private, CGNAT, link-local, metadata, unspecified, multicast, broadcast, reserved,
 * and IPv6 forms embedding such IPv4 addresses). Unparseable text counts as forbidden.
 */
export function isForbiddenAddress(ip: string): boolean {
  return classifyAddress(ip) !== 'public';
}

/** A CIDR block such as `127.0.0.1/32` or `fd00::/8`. */
export interface Cidr {
  family: 4 | 6;
  bytes: number[];
  prefix: number;
}

/** Parses `address/prefix` (a bare address is a single host); null when malformed. */
export function parseCidr(text: string): Cidr | null {
  const [address = '', prefixText, ...extra] = text.trim().split('/');
  if (extra.length > 0) return null;
  const parsed = parseIp(address);
  if (!parsed) return null;
  const maxPrefix = parsed.family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  if (prefix > maxPrefix) return null;
  return { family: parsed.family, bytes: parsed.bytes, prefix };
}

function unmapped(parsed: ParsedIp): ParsedIp {
  const bytes = parsed.bytes;
  if (parsed.family === 6 && allZero(bytes, 0, 10) && bytes[10] === 0xff && bytes[11] === 0xff)
    return { family: 4, bytes: bytes.slice(12) };
  return parsed;
}

/** Whether an address lies in one of the CIDR blocks (IPv4-mapped IPv6 addresses match IPv4 blocks). */
export function isAddressInCidrs(ip: string, cidrs: readonly string[]): boolean {
  const raw = parseIp(ip);
  if (!raw) return false;
  const address = unmapped(raw);
  for (const text of cidrs) {
    const cidr = parseCidr(text);
    if (!cidr || cidr.family !== address.family) continue;
    let matches = true;
    for (let bit = 0; bit < cidr.prefix; bit += 1) {
      const index = bit >> 3;
      const mask = 0x80 >> (bit & 7);
      if (((address.bytes[index] ?? 0) & mask) !== ((cidr.bytes[index] ?? 0) & mask)) {
        matches = false;
        break;
      }
    }
    if (matches) return true;
  }
  return false;
}

/**
 * Whether the SSRF policy lets a connection go to `ip`: public addresses always, private, loopback,
 * link-local and reserved ones only inside the operator's `allowPrivateCidrs`, metadata, unspecified,
 * multicast and broadcast addresses never.
 */
export function isAddressAllowed(ip: string, allowPrivateCidrs: readonly string[] = []): boolean {
  const kind = classifyAddress(ip);
  if (kind === 'public') return true;
  if (NEVER_ALLOWED.has(kind)) return false;
  return isAddressInCidrs(ip, allowPrivateCidrs);
}

/** The operator's HTTP policy. */
export interface UrlPolicy {
  /** Exact hosts, IP literals, or `*.example.com`; empty disables outbound HTTP. */
  allowHosts: readonly string[];
  /** Plain `http:` is refused unless true. */
  allowHttp: boolean;
  /** Private ranges the operator opened, e.g. `['10.1.2.0/24']`; see {@link isAddressAllowed}. */
  allowPrivateCidrs?: readonly string[];
}

/** Why a URL was refused (a detail of `TOOL.URL_REJECTED`). */
export type UrlRejectionCode =
  | 'invalid_url'
  | 'scheme_not_allowed'
  | 'credentials_in_url'
  | 'no_hosts_allowed'
  | 'forbidden_hostname'
  | 'forbidden_address'
  | 'host_not_allowed';

/** The outcome of {@link checkUrl}. `hostname` has no brackets; `ip` is set for IP-literal hosts. */
export type UrlCheck =
  | { ok: true; url: URL; hostname: string; ip: string | null }
  | { ok: false; code: UrlRejectionCode; reason: string };

/**
 * Normalises one allow-list entry the way the URL parser normalises hosts (lower case, punycode, IP
 * literals canonical, no trailing dot); `*.` prefixes are kept. Null when the entry is not a host.
 */
export function normalizeAllowHost(entry: string): string | null {
  let text = entry.trim().toLowerCase();
  let wildcard = false;
  if (text.startsWith('*.')) {
    wildcard = true;
    text = text.slice(2);
  }
  if (text === '' || /[/\\@?#\s*%]/.test(text)) return null;
  if (text.includes(':') && !text.startsWith('[')) text = `[${text}]`;
  let hostname: string;
  try {
    const url = new URL(`http://${text}/`);
    if (url.port !== '') return null;
    hostname = url.hostname;
  } catch {
    return null;
  }
  if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
  if (hostname === '') return null;
  if (wildcard && parseIp(hostname)) return null;
  return wildcard ? `*.${hostname}` : hostname;
}

/** Parses an allow-list (e.g. from `TANDEM_HTTP_ALLOW_HOSTS`), reporting every entry that is not a host. */
export function parseAllowHosts(
  entries: readonly string[],
): { ok: true; hosts: string[] } | { ok: false; invalid: string[] } {
  const hosts: string[] = [];
  const invalid: string[] = [];
  for (const entry of entries) {
    if (entry.trim() === '') continue;
    const host = normalizeAllowHost(entry);
    if (host === null) invalid.push(entry);
    else hosts.push(host);
  }
  return invalid.length > 0 ? { ok: false, invalid } : { ok: true, hosts };
}

/** Names that exist only to reach the machine itself, its cloud metadata service or its local network. */
function isReservedHostname(hostname: string): boolean {
  if (!hostname.includes('.')) return true;
  return (
    hostname.endsWith('.localhost') ||
    hostname === 'localhost.localdomain' ||
    hostname === 'metadata.google.internal' ||
    hostname === 'metadata.goog' ||
    hostname.endsWith('.in-addr.arpa') ||
    hostname.endsWith('.ip6.arpa')
  );
}

/** Whether a (normalised, dot-less at the end) host matches the allow-list. */
export function isHostAllowed(hostname: string, allowHosts: readonly string[]): boolean {
  for (const entry of allowHosts) {
    const allowed = normalizeAllowHost(entry);
    if (allowed === null) continue;
    if (allowed.startsWith('*.')) {
      const suffix = allowed.slice(1);
      if (hostname.endsWith(suffix) && hostname.length > suffix.length) return true;
    } else if (allowed === hostname) return true;
  }
  return false;
}

/** Whitespace (ASCII or Unicode), C0/C1 controls and invisible formatting characters. */
function hasSpaceOrControl(text: string): boolean {
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code <= 0x20 || (code >= 0x7f && code <= 0xa0)) return true;
    if (code === 0x1680 || (code >= 0x2000 && code <= 0x200f) || (code >= 0x2028 && code <= 0x202f))
      return true;
    if (code === 0x205f || code === 0x3000 || code === 0xfeff) return true;
  }
  return false;
}

function refuse(code: UrlRejectionCode, reason: string): UrlCheck {
  return { ok: false, code, reason };
}

/**
 * Checks a URL against the policy without resolving it. An IP-literal host is checked here completely;
 * a name still has to have every resolved address checked with {@link isAddressAllowed} by whoever
 * connects, on every redirect.
 */
export function checkUrl(raw: string, policy: UrlPolicy): UrlCheck {
  if (typeof raw !== 'string' || raw.length === 0) return refuse('invalid_url', 'the URL is empty');
  if (raw.length > URL_MAX_CHARS)
    return refuse('invalid_url', `the URL is longer than ${URL_MAX_CHARS} characters`);
  // The URL parser silently drops tabs and newlines and trims spaces; refuse instead of guessing.
  if (hasSpaceOrControl(raw))
    return refuse('invalid_url', 'the URL contains whitespace or control characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse('invalid_url', 'the URL is not a valid absolute URL');
  }
  if (!(url.protocol === 'https:' || (url.protocol === 'http:' && policy.allowHttp))) {
    return refuse(
      'scheme_not_allowed',
      policy.allowHttp ? 'only https and http URLs are allowed' : 'only https URLs are allowed',
    );
  }
  if (url.username !== '' || url.password !== '' || /^[a-z][a-z0-9+.-]*:[/\\]*[^/\\?#]*@/i.test(raw)) {
    return refuse(
      'credentials_in_url',
      'credentials in URLs are not allowed; send them in a header that references a secret by name',
    );
  }
  if (policy.allowHosts.length === 0) {
    return refuse(
      'no_hosts_allowed',
      'http_request is disabled: no hosts are allowed (an operator lists them in TANDEM_HTTP_ALLOW_HOSTS)',
    );
  }
  let hostname = url.hostname;
  if (hostname.startsWith('[') && hostname.endsWith(']')) hostname = hostname.slice(1, -1);
  if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
  if (hostname === '') return refuse('invalid_url', 'the URL has no host');
  const ip = parseIp(hostname) ? hostname : null;
  if (ip !== null) {
    if (!isAddressAllowed(ip, policy.allowPrivateCidrs ?? [])) {
      return refuse(
        'forbidden_address',
        `${url.hostname} is a ${classifyAddress(ip)} address, which http_request may not reach`,
      );
    }
  } else if (isReservedHostname(hostname)) {
    return refuse(
      'forbidden_hostname',
      `${hostname} names the local machine, its network or a metadata service, which http_request may not reach`,
    );
  }
  if (!isHostAllowed(ip !== null ? url.hostname : hostname, policy.allowHosts)) {
    return refuse(
      'host_not_allowed',
      `${url.hostname} is not an allowed host (allowed: ${policy.allowHosts.join(', ')}; set by TANDEM_HTTP_ALLOW_HOSTS)`,
    );
  }
  return { ok: true, url, hostname, ip };
}
