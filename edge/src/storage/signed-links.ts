import { constantTimeEqual, hmacSha256Hex } from '../lib/crypto';
import { invalidSignature, linkExpired } from '../lib/api-error';

/** Route prefix under which signed R2 objects are served. */
export const FILES_PATH_PREFIX = '/v1/files/';

/**
 * The signed message: the R2 object key and the expiry, separated by a newline (object keys never
 * contain one), so neither can be changed without invalidating the signature.
 */
function signedMessage(key: string, exp: number): string {
  return `${key}\n${exp}`;
}

/** URL path of an R2 object key under /v1/files/ (each key segment percent-encoded). */
export function fileLinkPath(key: string): string {
  return FILES_PATH_PREFIX + key.split('/').map(encodeURIComponent).join('/');
}

/** Options of {@link signFileLink}. */
export interface SignFileLinkOptions {
  /** Public origin of the edge, e.g. "https://api.example.com" (no trailing slash). */
  origin: string;
  /** R2 object key. */
  key: string;
  /** HMAC secret (LINK_SIGNING_SECRET). */
  secret: string;
  /** Lifetime in seconds. */
  ttlSeconds: number;
  /** Current time in unix seconds. */
  nowSeconds: number;
}

/**
 * Build `<origin>/v1/files/<key>?exp=<unix seconds>&sig=<hex HMAC-SHA256(secret, key \n exp)>`.
 * The link is the credential: whoever holds it may read the object until `exp`.
 */
export async function signFileLink(options: SignFileLinkOptions): Promise<{ url: string; expiresAt: number }> {
  const exp = Math.floor(options.nowSeconds) + options.ttlSeconds;
  const sig = await hmacSha256Hex(options.secret, signedMessage(options.key, exp));
  return { url: `${options.origin}${fileLinkPath(options.key)}?exp=${exp}&sig=${sig}`, expiresAt: exp };
}

/** Options of {@link verifyFileLink}; `exp` and `sig` are the raw query values (may be missing). */
export interface VerifyFileLinkOptions {
  key: string;
  exp: string | undefined;
  sig: string | undefined;
  secret: string;
  nowSeconds: number;
}

/**
 * Check a link's signature (constant-time compare) and then its expiry.
 * @throws ApiError 403 `invalid_signature` when exp/sig are missing or malformed or the signature
 *   does not match key+exp; 403 `link_expired` when exp ≤ now.
 */
export async function verifyFileLink(options: VerifyFileLinkOptions): Promise<void> {
  const { key, exp, sig } = options;
  if (!exp || !/^[1-9]\d{0,11}$/.test(exp) || !sig || !/^[0-9a-f]{64}$/.test(sig)) throw invalidSignature();
  const expected = await hmacSha256Hex(options.secret, signedMessage(key, Number(exp)));
  if (!constantTimeEqual(expected, sig)) throw invalidSignature();
  if (Number(exp) <= options.nowSeconds) throw linkExpired();
}
