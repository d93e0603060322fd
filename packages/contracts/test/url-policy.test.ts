import { describe, expect, it } from 'vitest';
import {
  checkUrl,
  classifyAddress,
  headerNameProblem,
  headerValueProblem,
  isAddressAllowed,
  isAddressInCidrs,
  isForbiddenAddress,
  normalizeAllowHost,
  parseAllowHosts,
  parseCidr,
  type UrlPolicy,
} from '../src/index.js';

const POLICY: UrlPolicy = {
  allowHosts: [
    'api.example.com',
    '*.example.org',
    '8.8.8.8',
    '127.0.0.1',
    '[::1]',
    'localhost',
    'metadata.google.internal',
    '169.254.169.254',
  ],
  allowHttp: false,
};

function rejection(raw: string, policy: UrlPolicy = POLICY): string {
  const result = checkUrl(raw, policy);
  if (result.ok) throw new Error(`expected ${raw} to be refused`);
  return result.code;
}

describe('isForbiddenAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['169.254.1.1', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.0.8', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fd00:ec2::254', 'metadata'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:0:127.0.0.1', 'loopback'],
    ['::127.0.0.1', 'loopback'],
    ['::8.8.8.8', 'reserved'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['64:ff9b:1::1', 'reserved'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:a9fe:a9fe::1', 'metadata'],
    ['2002:c0a8:101::1', 'private'],
    ['2001:db8::1', 'reserved'],
    ['2001::1', 'reserved'],
    ['100::1', 'reserved'],
    ['fe80::1%eth0', 'invalid'],
    ['0x7f000001', 'invalid'],
    ['2130706433', 'invalid'],
    ['127.1', 'invalid'],
    ['0177.0.0.1', 'invalid'],
    ['127.000.000.001', 'invalid'],
    ['localhost', 'invalid'],
    ['', 'invalid'],
    ['1:2:3:4:5:6:7:8:9', 'invalid'],
    ['1::2::3', 'invalid'],
  ])('%s is %s and forbidden', (ip, kind) => {
    expect(classifyAddress(ip)).toBe(kind);
    expect(isForbiddenAddress(ip)).toBe(true);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '93.184.215.14',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
  ])('%s is public', (ip) => {
    expect(classifyAddress(ip)).toBe('public');
    expect(isForbiddenAddress(ip)).toBe(false);
  });
});

describe('CIDRs and operator opt-in', () => {
  it('parses blocks and matches addresses, IPv4-mapped ones included', () => {
    expect(parseCidr('10.1.2.0/24')).toEqual({ family: 4, bytes: [10, 1, 2, 0], prefix: 24 });
    expect(parseCidr('127.0.0.1')?.prefix).toBe(32);
    for (const bad of ['10.0.0.0/33', '::/129', 'x/8', '10.0.0.0/8/1', '10.0.0.0/-1'])
      expect(parseCidr(bad)).toBeNull();
    expect(isAddressInCidrs('10.1.2.200', ['10.1.2.0/24'])).toBe(true);
    expect(isAddressInCidrs('10.1.3.1', ['10.1.2.0/24'])).toBe(false);
    expect(isAddressInCidrs('::ffff:10.1.2.3', ['10.1.2.0/24'])).toBe(true);
    expect(isAddressInCidrs('fd00::5', ['fd00::/8'])).toBe(true);
    expect(isAddressInCidrs('127.0.0.1', ['::1/128'])).toBe(false);
  });

  it('opens private ranges only inside the opt-in, and never metadata, unspecified or multicast', () => {
    expect(isAddressAllowed('127.0.0.1', ['127.0.0.1/32'])).toBe(true);
    expect(isAddressAllowed('127.0.0.2', ['127.0.0.1/32'])).toBe(false);
    expect(isAddressAllowed('10.0.0.5', [])).toBe(false);
    expect(isAddressAllowed('169.254.169.254', ['169.254.0.0/16'])).toBe(false);
    expect(isAddressAllowed('169.254.1.1', ['169.254.0.0/16'])).toBe(true);
    expect(isAddressAllowed('0.0.0.0', ['0.0.0.0/0'])).toBe(false);
    expect(isAddressAllowed('224.0.0.1', ['0.0.0.0/0'])).toBe(false);
    expect(isAddressAllowed('8.8.8.8')).toBe(true);
  });
});

describe('checkUrl', () => {
  it('accepts allow-listed https URLs', () => {
    for (const raw of [
      'https://api.example.com/v1/items?q=1',
      'https://API.EXAMPLE.COM/v1',
      'https://api.example.com./v1',
      'https://api.example.com:8443/v1',
      'https://a.example.org/',
      'https://a.b.example.org/',
      'https://8.8.8.8/dns',
      'https://api.example.com/items/{{steps.s1.value.id}}',
    ]) {
      const result = checkUrl(raw, POLICY);
      if (!result.ok) throw new Error(`${raw}: ${result.reason}`);
    }
    const result = checkUrl('https://8.8.8.8/', POLICY);
    expect(result.ok && result.ip).toBe('8.8.8.8');
  });

  it.each([
    ['https://127.0.0.1/', 'forbidden_address'],
    ['https://169.254.169.254/latest/meta-data/', 'forbidden_address'],
    ['https://[::1]/', 'forbidden_address'],
    ['https://0x7f000001/', 'forbidden_address'],
    ['https://2130706433/', 'forbidden_address'],
    ['https://127.1/', 'forbidden_address'],
    ['https://0177.0.0.1/', 'forbidden_address'],
    ['https://0x7f.0.0.1/', 'forbidden_address'],
    ['https://[::ffff:127.0.0.1]/', 'forbidden_address'],
    ['https://[::ffff:7f00:1]/', 'forbidden_address'],
    ['https://[0:0:0:0:0:ffff:7f00:1]/', 'forbidden_address'],
    ['https://[64:ff9b::a9fe:a9fe]/', 'forbidden_address'],
    ['https://[2002:7f00:1::]/', 'forbidden_address'],
    ['https://[fd00:ec2::254]/', 'forbidden_address'],
    ['https://[fe80::1%25eth0]/', 'invalid_url'],
    ['https://0/', 'forbidden_address'],
    ['https://10.0.0.1/', 'forbidden_address'],
    ['https://localhost/', 'forbidden_hostname'],
    ['https://LOCALHOST./', 'forbidden_hostname'],
    ['https://app.localhost/', 'forbidden_hostname'],
    ['https://metadata.google.internal/computeMetadata/v1/', 'forbidden_hostname'],
    ['https://intranet/', 'forbidden_hostname'],
    ['https://1.0.0.127.in-addr.arpa/', 'forbidden_hostname'],
    ['http://api.example.com/', 'scheme_not_allowed'],
    ['ftp://api.example.com/', 'scheme_not_allowed'],
    ['file:///etc/passwd', 'scheme_not_allowed'],
    ['gopher://api.example.com/', 'scheme_not_allowed'],
    ['javascript:alert(1)', 'scheme_not_allowed'],
    ['https://user:pass@api.example.com/', 'credentials_in_url'],
    ['https://user@api.example.com/', 'credentials_in_url'],
    ['https://@api.example.com/', 'credentials_in_url'],
    ['https://api.example.com@evil.example.net/', 'credentials_in_url'],
    ['https://evil.example.net/', 'host_not_allowed'],
    ['https://example.org/', 'host_not_allowed'],
    ['https://api.example.com.evil.net/', 'host_not_allowed'],
    ['https://xn--80ak6aa92e.com/', 'host_not_allowed'],
    ['https://1.1.1.1/', 'host_not_allowed'],
    ['https://api.example.com\n.evil.net/', 'invalid_url'],
    ['https://api.exa\tmple.com/', 'invalid_url'],
    [' https://api.example.com/', 'invalid_url'],
    ['/relative/path', 'invalid_url'],
    ['', 'invalid_url'],
    [`https://api.example.com/${'a'.repeat(2100)}`, 'invalid_url'],
  ])('refuses %s (%s)', (raw, code) => {
    expect(rejection(raw)).toBe(code);
  });

  it('normalises numeric hosts before saying what they are', () => {
    const result = checkUrl('https://0x7f000001/', POLICY);
    expect(!result.ok && result.reason).toContain('127.0.0.1 is a loopback address');
  });

  it('refuses everything when the allow-list is empty, naming the setting', () => {
    const result = checkUrl('https://api.example.com/', { allowHosts: [], allowHttp: true });
    expect(!result.ok && result.code).toBe('no_hosts_allowed');
    expect(!result.ok && result.reason).toContain('TANDEM_HTTP_ALLOW_HOSTS');
  });

  it('allows http only when configured, and private literals only with an opt-in', () => {
    expect(checkUrl('http://api.example.com/', { ...POLICY, allowHttp: true }).ok).toBe(true);
    expect(
      checkUrl('http://127.0.0.1:8080/', { ...POLICY, allowHttp: true, allowPrivateCidrs: ['127.0.0.1/32'] })
        .ok,
    ).toBe(true);
    // An opt-in does not put a host on the allow-list.
    expect(rejection('https://10.0.0.1/', { ...POLICY, allowPrivateCidrs: ['10.0.0.0/8'] })).toBe(
      'host_not_allowed',
    );
  });
});

describe('allow-list entries', () => {
  it('normalises like the URL parser and rejects what is not a host', () => {
    expect(normalizeAllowHost(' API.Example.COM. ')).toBe('api.example.com');
    expect(normalizeAllowHost('*.Example.org')).toBe('*.example.org');
    expect(normalizeAllowHost('::1')).toBe('[::1]');
    expect(normalizeAllowHost('bücher.example')).toBe('xn--bcher-kva.example');
    for (const bad of [
      '',
      '*',
      '*.',
      'https://x.com',
      'x.com/path',
      'x.com:443',
      'a@b.com',
      '*.127.0.0.1',
      'a b.com',
    ])
      expect(normalizeAllowHost(bad)).toBeNull();
    expect(parseAllowHosts(['a.com', ' ', '*.b.com'])).toEqual({ ok: true, hosts: ['a.com', '*.b.com'] });
    expect(parseAllowHosts(['a.com', 'http://b.com'])).toEqual({ ok: false, invalid: ['http://b.com'] });
  });
});

describe('request header rules', () => {
  it('accepts ordinary headers and refuses forbidden, malformed and injected ones', () => {
    expect(headerNameProblem('Accept')).toBeNull();
    expect(headerNameProblem('X-Api-Key')).toBeNull();
    for (const name of [
      'Host',
      'content-length',
      'Transfer-Encoding',
      'Connection',
      'Upgrade',
      'TE',
      'Proxy-Authorization',
      'Sec-Fetch-Mode',
      'X-Forwarded-For',
      'Bad Name',
      'a:b',
      ':path',
      '',
    ])
      expect(headerNameProblem(name)).not.toBeNull();
    expect(headerValueProblem('text/plain; charset=utf-8\tx')).toBeNull();
    for (const value of ['a\r\nb', 'a\nb', 'a\rb', 'a\u0000b', 'é€', 'x'.repeat(8193)])
      expect(headerValueProblem(value)).not.toBeNull();
  });
});
