import { describe, expect, it } from 'vitest';
import { parseIpv4, parseIpv6 } from '../../../edge/src/inputs/ip-address';
import { assertPublicUrl, checkPublicUrl } from '../../../edge/src/inputs/url-guard';
import { ApiError } from '../../../edge/src/lib/api-error';

describe('checkPublicUrl: refused targets (SSRF)', () => {
  it.each([
    ['loopback', 'https://127.0.0.1/a.png', 'loopback'],
    ['loopback, other /8 address', 'https://127.200.1.1/a.png', 'loopback'],
    ['loopback as one decimal number', 'https://2130706433/a.png', 'loopback'],
    ['loopback in hex shorthand', 'https://0x7f.1/a.png', 'loopback'],
    ['loopback in short dotted form', 'https://127.1/a.png', 'loopback'],
    ['private 10/8', 'https://10.1.2.3/a.png', 'private'],
    ['private 172.16/12', 'https://172.31.255.1/a.png', 'private'],
    ['private 192.168/16', 'https://192.168.0.10/a.png', 'private'],
    ['link-local (cloud metadata)', 'https://169.254.169.254/latest/meta-data', 'link-local'],
    ['CGNAT', 'https://100.64.0.1/a.png', 'carrier-grade NAT'],
    ['unspecified', 'https://0.0.0.0/a.png', 'this network'],
    ['multicast', 'https://224.0.0.1/a.png', 'multicast'],
    ['broadcast', 'https://255.255.255.255/a.png', 'reserved'],
    ['IPv6 loopback', 'https://[::1]/a.png', 'loopback'],
    ['IPv6 unspecified', 'https://[::]/a.png', 'unspecified'],
    ['IPv4-mapped loopback', 'https://[::ffff:127.0.0.1]/a.png', 'loopback'],
    ['IPv4-mapped private', 'https://[::ffff:10.0.0.1]/a.png', 'private'],
    ['IPv6 unique-local', 'https://[fd12:3456::1]/a.png', 'unique-local'],
    ['IPv6 link-local', 'https://[fe80::1]/a.png', 'link-local'],
    ['IPv6 multicast', 'https://[ff02::1]/a.png', 'multicast'],
    ['NAT64 of a private address', 'https://[64:ff9b::10.0.0.1]/a.png', 'private'],
    ['6to4 of loopback', 'https://[2002:7f00:1::]/a.png', 'loopback'],
    ['Teredo', 'https://[2001::1]/a.png', 'Teredo'],
    ['localhost', 'https://localhost/a.png', 'localhost'],
    ['localhost with a trailing dot', 'https://localhost./a.png', 'localhost'],
    ['a .localhost name', 'https://api.localhost/a.png', 'localhost'],
    ['mDNS .local', 'https://printer.local/a.png', '.local'],
    ['.internal', 'https://metadata.google.internal/computeMetadata/v1/', '.internal'],
    ['a single-label name', 'https://intranet/a.png', 'not a public host name'],
  ])('%s', (_what, url, reason) => {
    const check = checkPublicUrl(url);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toContain(reason);
  });

  it.each([
    ['http without the development flag', 'http://images.example.com/a.png', 'only https'],
    ['file:', 'file:///etc/passwd', 'scheme'],
    ['ftp:', 'ftp://images.example.com/a.png', 'scheme'],
    ['gopher:', 'gopher://images.example.com/', 'scheme'],
    ['credentials in the URL', 'https://user:secret@images.example.com/a.png', 'credentials'],
    ['not a URL', 'images.example.com/a.png', 'not an absolute URL'],
  ])('%s', (_what, url, reason) => {
    const check = checkPublicUrl(url);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toContain(reason);
  });

  it('http is accepted only with allowHttp, and private addresses stay refused even then', () => {
    expect(checkPublicUrl('http://images.example.com/a.png', { allowHttp: true }).ok).toBe(true);
    expect(checkPublicUrl('http://127.0.0.1:8788/a.png', { allowHttp: true }).ok).toBe(false);
    expect(checkPublicUrl('http://localhost/a.png', { allowHttp: true }).ok).toBe(false);
  });
});

describe('checkPublicUrl: accepted targets', () => {
  it.each([
    'https://images.example.com/cat.png',
    'https://cdn.example.org:8443/path/cat.webp?size=large',
    'https://93.184.216.34/cat.png',
    'https://8.8.8.8/a.png',
    'https://[2606:4700:4700::1111]/a.png',
    'https://[::ffff:8.8.8.8]/a.png',
    'https://172.32.0.1/a.png',
    'https://100.128.0.1/a.png',
  ])('%s', (url) => {
    const check = checkPublicUrl(url);
    expect(check).toMatchObject({ ok: true });
  });
});

describe('assertPublicUrl', () => {
  it('throws a 400 invalid_image_url naming the field', () => {
    let caught: unknown;
    try {
      assertPublicUrl('https://10.0.0.1/a.png', 'image_url');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ApiError);
    const error = caught as ApiError;
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_image_url');
    expect(error.param).toBe('image_url');
    expect(error.message).toContain('10.0.0.0/8');
  });
});

describe('IP literal parsing', () => {
  it('parses IPv4 dotted decimal only', () => {
    expect(parseIpv4('192.168.1.20')).toEqual([192, 168, 1, 20]);
    expect(parseIpv4('256.1.1.1')).toBeNull();
    expect(parseIpv4('1.2.3')).toBeNull();
    expect(parseIpv4('example.com')).toBeNull();
  });

  it('parses IPv6 with compression and an embedded IPv4 tail', () => {
    expect(parseIpv6('::1')).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIpv6('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIpv6('fe80::1:2')).toEqual([0xfe80, 0, 0, 0, 0, 0, 1, 2]);
    expect(parseIpv6('::ffff:127.0.0.1')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1]);
    expect(parseIpv6('::1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0, 0x0102, 0x0304]);
    expect(parseIpv6('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parseIpv6('1:2:3:4:5:6:7')).toBeNull();
    expect(parseIpv6('1::2::3')).toBeNull();
    expect(parseIpv6('fe80::1%eth0')).toBeNull();
  });
});
