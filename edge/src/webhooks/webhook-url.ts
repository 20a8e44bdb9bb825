import { invalidParameter, type ApiError } from '../lib/api-error';

/** Options of {@link checkWebhookUrl}. */
export interface CheckWebhookUrlOptions {
  /** Field named in the 400 (default "extra.webhook.url"). */
  param?: string;
  /** Accept http:// too (local development only; https otherwise). */
  allowHttp?: boolean;
}

/** Host names that always mean "this machine or its private network". */
const PRIVATE_NAME = /(^|\.)(localhost|local|internal|intranet|lan|home\.arpa|localdomain)$/i;

/** IPv4 CIDR blocks that are not public unicast (RFC 6890 special-purpose registry). */
const PRIVATE_V4: ReadonlyArray<[number, number]> = [
  [0x00000000, 8], // 0.0.0.0/8 "this network"
  [0x0a000000, 8], // 10/8 private
  [0x64400000, 10], // 100.64/10 CGNAT
  [0x7f000000, 8], // 127/8 loopback
  [0xa9fe0000, 16], // 169.254/16 link-local (cloud metadata)
  [0xac100000, 12], // 172.16/12 private
  [0xc0000000, 24], // 192.0.0/24 IETF protocol assignments
  [0xc0000200, 24], // 192.0.2/24 TEST-NET-1
  [0xc0a80000, 16], // 192.168/16 private
  [0xc6120000, 15], // 198.18/15 benchmarking
  [0xc6336400, 24], // 198.51.100/24 TEST-NET-2
  [0xcb007100, 24], // 203.0.113/24 TEST-NET-3
  [0xe0000000, 4], // 224/4 multicast
  [0xf0000000, 4], // 240/4 reserved + broadcast
];

function parseIpv4(host: string): number | null {
  const parts = host.split('.');
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255)) return null;
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

function isPrivateIpv4(address: number): boolean {
  return PRIVATE_V4.some(([base, bits]) => Math.floor(address / 2 ** (32 - bits)) === Math.floor(base / 2 ** (32 - bits)));
}

/**
 * True for IPv6 literals that are not global unicast: unspecified, loopback, IPv4-mapped/compatible
 * (judged by their IPv4 part), unique-local fc00::/7, link-local fe80::/10, multicast ff00::/8,
 * documentation 2001:db8::/32. WHATWG URL parsing has already normalised the text (lower case, "::").
 */
function isPrivateIpv6(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === '::' || bare === '::1') return true;
  const mapped = /^::(ffff:)?([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(bare);
  if (mapped) return isPrivateIpv4(parseInt(mapped[2], 16) * 65536 + parseInt(mapped[3], 16));
  const first = parseInt(bare.split(':')[0] || '0', 16);
  if ((first & 0xfe00) === 0xfc00) return true; // fc00::/7
  if ((first & 0xffc0) === 0xfe80) return true; // fe80::/10
  if ((first & 0xff00) === 0xff00) return true; // ff00::/8
  return bare.startsWith('2001:db8:') || bare.startsWith('2001:0db8:');
}

/**
 * The SSRF rules of image_url applied to a webhook URL (issue 6 part 8): https only (http only with
 * `allowHttp`), no credentials, and never a loopback / private / link-local / CGNAT / unique-local /
 * multicast IP literal or a name such as localhost or *.internal. A Worker cannot resolve DNS itself,
 * so a public name that resolves to a private address is left to Cloudflare's egress, which does not
 * route to private networks. Delivery never follows redirects (see webhook-delivery.ts).
 * @returns the parsed URL. @throws ApiError 400 `invalid_webhook_url` naming `param`.
 */
export function checkWebhookUrl(raw: string, options: CheckWebhookUrlOptions = {}): URL {
  const param = options.param ?? 'extra.webhook.url';
  const refuse = (why: string): ApiError => invalidParameter(param, `The webhook URL ${why}.`, 'invalid_webhook_url');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('is not an absolute URL');
  }
  if (url.protocol !== 'https:' && !(options.allowHttp && url.protocol === 'http:')) {
    throw refuse(options.allowHttp ? 'must use https or http' : 'must use https');
  }
  if (url.username || url.password) throw refuse('must not contain credentials');
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  if (host === '' || PRIVATE_NAME.test(host) || !host.includes('.') && !host.startsWith('[')) {
    throw refuse(`host "${host}" is not a public name`);
  }
  const v4 = parseIpv4(host);
  if ((v4 !== null && isPrivateIpv4(v4)) || (host.startsWith('[') && isPrivateIpv6(host))) {
    throw refuse(`host "${host}" is a private, loopback or link-local address`);
  }
  return url;
}
