import { ipLiteralNonPublicReason } from './ip-address';
import { invalidImageUrl } from './input-errors';

/** Options of {@link checkPublicUrl}. */
export interface PublicUrlPolicy {
  /** Also accept plain http:// (development only: ALLOW_HTTP_IMAGE_URLS="true"). Default false. */
  allowHttp?: boolean;
}

/** The verdict of {@link checkPublicUrl}. */
export type PublicUrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

/**
 * DNS suffixes that only ever name hosts on a local or private network (RFC 6761 localhost,
 * RFC 6762 .local, RFC 8375 home.arpa, ICANN's reserved .internal, and common private-network
 * conventions). `.arpa` covers reverse-DNS names.
 */
const PRIVATE_NAME_SUFFIXES = ['localhost', 'local', 'internal', 'intranet', 'lan', 'home', 'corp', 'localdomain', 'home.arpa', 'arpa'];

/**
 * The SSRF policy for URLs the edge fetches on a client's behalf (image_url; also usable for webhook
 * targets): pure, no network.
 * - scheme https only; http only with `allowHttp`; anything else (file:, ftp:, data:, …) refused;
 * - no credentials in the URL;
 * - IP literals must be public unicast: loopback, private (RFC 1918), CGNAT, link-local (cloud
 *   metadata 169.254.169.254), unique-local, multicast, documentation and reserved ranges are refused,
 *   in every spelling the URL parser normalises (2130706433, 0x7f.1, [::ffff:127.0.0.1]);
 * - names: `localhost`, single-label names and local/private suffixes (.local, .internal, .lan, …)
 *   are refused.
 * Limitation: a Worker cannot resolve DNS itself, so a public-looking name that RESOLVES to a private
 * address is not caught here; in production Cloudflare's egress cannot reach private networks, and
 * redirects are re-checked hop by hop by the fetcher (fetch-image-url.ts).
 */
export function checkPublicUrl(raw: string | URL, policy: PublicUrlPolicy = {}): PublicUrlCheck {
  let url: URL;
  try {
    url = typeof raw === 'string' ? new URL(raw) : new URL(raw.href);
  } catch {
    return { ok: false, reason: 'it is not an absolute URL' };
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
    return {
      ok: false,
      reason: url.protocol === 'http:' ? 'only https:// URLs are accepted' : `the scheme "${url.protocol}" is not accepted (https:// only)`,
    };
  }
  if (url.username !== '' || url.password !== '') return { ok: false, reason: 'URLs with credentials are not accepted' };
  const hostname = url.hostname.toLowerCase().replace(/\.+$/, '');
  if (hostname === '') return { ok: false, reason: 'it has no host' };
  const ipReason = ipLiteralNonPublicReason(hostname);
  if (ipReason) return { ok: false, reason: `its host is ${ipReason}` };
  if (ipReason === undefined) {
    if (!hostname.includes('.')) return { ok: false, reason: `"${hostname}" is not a public host name` };
    const suffix = PRIVATE_NAME_SUFFIXES.find((s) => hostname === s || hostname.endsWith(`.${s}`));
    if (suffix) return { ok: false, reason: `"${hostname}" names a local or private host (.${suffix})` };
  }
  return { ok: true, url };
}

/**
 * {@link checkPublicUrl} as an assertion for a request field.
 * @param param the field named in the error (e.g. "image_url").
 * @throws ApiError 400 `invalid_image_url` with the reason.
 */
export function assertPublicUrl(raw: string | URL, param: string, policy: PublicUrlPolicy = {}): URL {
  const check = checkPublicUrl(raw, policy);
  if (!check.ok) throw invalidImageUrl(`${param} is refused: ${check.reason}.`, param);
  return check.url;
}

/** Whether the Worker var ALLOW_HTTP_IMAGE_URLS (a development flag) is exactly "true". */
export function allowHttpImageUrls(env: object): boolean {
  return (env as { ALLOW_HTTP_IMAGE_URLS?: unknown }).ALLOW_HTTP_IMAGE_URLS === 'true';
}
