import { invalidParameter } from '../lib/api-error';
import { checkPublicUrl } from '../inputs/url-guard';

/** Options of {@link checkWebhookUrl}. */
export interface CheckWebhookUrlOptions {
  /** Field named in the 400 (default "extra.webhook.url"). */
  param?: string;
  /** Accept http:// too (the development flag ALLOW_HTTP_IMAGE_URLS="true"; https otherwise). */
  allowHttp?: boolean;
}

/**
 * A webhook URL under the same SSRF rules as image_url (edge/src/inputs/url-guard.ts, issue 6 part 8):
 * https only (http only with `allowHttp`), no credentials, never a loopback / private / link-local /
 * CGNAT / unique-local / multicast IP literal in any spelling, nor localhost, single-label or
 * .local/.internal-style names. A Worker cannot resolve DNS, so a public name that resolves to a private
 * address is left to Cloudflare's egress, which does not reach private networks. Delivery never follows
 * redirects (webhook-delivery.ts), so a checked URL cannot bounce the request elsewhere.
 * @returns the parsed URL. @throws ApiError 400 `invalid_webhook_url` naming `param`.
 */
export function checkWebhookUrl(raw: string, options: CheckWebhookUrlOptions = {}): URL {
  const param = options.param ?? 'extra.webhook.url';
  const check = checkPublicUrl(raw, { allowHttp: options.allowHttp ?? false });
  if (!check.ok) throw invalidParameter(param, `The webhook URL is refused: ${check.reason}.`, 'invalid_webhook_url');
  return check.url;
}
