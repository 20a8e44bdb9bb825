/**
 * Service-token check: every route except GET /healthz needs `Authorization: Bearer <token>`. The compare
 * is constant-time over SHA-256 digests, so neither content nor length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import { errors } from '../lib/errors';

export interface ServiceTokenOptions {
  token: string;
  /** Paths reachable without the token. */
  publicPaths?: string[];
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export const serviceToken = fp<ServiceTokenOptions>(async function serviceToken(app, opts) {
  if (!opts.token) throw new Error('serviceToken: a token is required');
  const expected = digest(opts.token);
  const open = new Set(opts.publicPaths ?? ['/healthz']);
  app.addHook('onRequest', async function checkServiceToken(req) {
    if (open.has(req.url.split('?')[0])) return;
    const header = req.headers.authorization ?? '';
    const presented = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!presented || !timingSafeEqual(digest(presented), expected)) throw errors.unauthorized();
  });
});
