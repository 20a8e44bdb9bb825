import { invalidParameter } from '../lib/api-error';
import { checkPublicUrl } from '../inputs/url-guard';

/** Options of {@link checkWebhookUrl}. */
export interface CheckWebhookUrlOptions {
  /** Field named in the 400 (default "extra.webhook.url"). */
  param?: string;
  /** Accept http:// too (the development flag ALLOW_HTTP_IMAGE_URLS="true"; https otherwise). */
  allowHttp?: boolean;
  /**
   * Accept receivers on this machine: http(s)://127.0.0.1, localhost or [::1] with any port (the development
   * flag ALLOW_LOCAL_WEBHOOK_URLS="true", which `npm start` sets and wrangler.toml keeps "false"). Every other
   * private or local address stays refused.
   */
  allowLoopback?: boolean;
}

/** The host names of this machine that {@link CheckWebhookUrlOptions.allowLoopback} lets through. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Whether the Worker var ALLOW_LOCAL_WEBHOOK_URLS (a development flag) is exactly "true". */
export function allowLocalWebhookUrls(env: object): boolean {
  return (env as { ALLOW_LOCAL_WEBHOOK_URLS?: unknown }).ALLOW_LOCAL_WEBHOOK_URLS === 'true';
}

/**
 * A webhook URL under the same SSRF rules as image_url (edge/src/inputs/url-guard.ts, issue 6 part 8):
 * https only (http only with `allowHttp`), no credentials, never a loopback / private / link-local /
 * CGNAT / unique-local / multicast IP literal in any spelling, nor localhost, single-label or
 * .local/.internal-style names. A Worker cannot resolve DNS, so a public name that resolves to a private
 * address is left to Cloudflare's egress, which does not reach private networks. Delivery never follows
 * redirects (webhook-delivery.ts), so a checked URL cannot bounce the request elsewhere.
 * With `allowLoopback` (development only), http or https receivers on 127.0.0.1 / localhost / [::1] pass too.
 * @returns the parsed URL. @throws ApiError 400 `invalid_webhook_url` naming `param`.
 */
export function checkWebhookUrl(raw: string, options: CheckWebhookUrlOptions = {}): URL {
  const param = options.param ?? 'extra.webhook.url';
  if (options.allowLoopback) {
    const local = localReceiverUrl(raw);
    if (local) return local;
  }
  const check = checkPublicUrl(raw, { allowHttp: options.allowHttp ?? false });
  if (!check.ok) throw invalidParameter(param, `The webhook URL is refused: ${check.reason}.`, 'invalid_webhook_url');
  return check.url;
}

/** `raw` parsed when it is an http(s) URL without credentials on a loopback host, else null. */
function localReceiverUrl(raw: string): URL | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  const httpish = url.protocol === 'http:' || url.protocol === 'https:';
  const noCredentials = url.username === '' && url.password === '';
  return httpish && noCredentials && LOOPBACK_HOSTS.has(url.hostname.toLowerCase()) ? url : null;
}
