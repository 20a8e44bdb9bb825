/**
 * Small Web Crypto helpers (Workers runtime and Node ≥ 20 alike; no Node APIs).
 */

const encoder = new TextEncoder();

/** Lower-case hex of bytes. */
export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let hex = '';
  for (const byte of view) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/** HMAC-SHA256 (RFC 2104) of a UTF-8 message under a UTF-8 secret, as 64 lower-case hex characters. */
export async function hmacSha256Hex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  return toHex(await crypto.subtle.sign('HMAC', key, encoder.encode(message)));
}

/**
 * Compare two strings in time that depends only on their lengths, not on where they differ
 * (so an attacker cannot find a signature byte by byte from response times). Different lengths
 * return false (lengths are public here: both are hex digests).
 */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Largest seed the edge picks at random: 2^32 − 1, the range stable-diffusion.cpp and A1111 use. */
export const MAX_RANDOM_SEED = 0xffff_ffff;

/** A uniformly random seed in [0, 2^32 − 1] from the CSPRNG (so it can be returned and reproduced). */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}
