import { z } from 'zod';

/**
 * Per-key limits enforced by the edge (issue 6): requests per minute, concurrent jobs, images per
 * UTC day, and compute units per minute (one unit = one megapixel × one step × one image, so a
 * 1024² 50-step image costs 52.4288 and a 256² 4-step one 0.262144). An absent limit means "no
 * limit of that kind".
 */
export const ApiKeyLimitsSchema = z.object({
  rpm: z.number().int().positive().optional(),
  concurrency: z.number().int().positive().optional(),
  images_per_day: z.number().int().positive().optional(),
  compute_units_per_minute: z.number().positive().optional(),
});
export type ApiKeyLimits = z.infer<typeof ApiKeyLimitsSchema>;

/** A SHA-256 digest as 64 lower-case hex characters. */
export const Sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex characters');

/**
 * The record stored in KV `API_KEYS` under the SHA-256 hex of the key (the key itself is never
 * stored). `key_hash` repeats the KV key so the edge can compare digests in constant time after
 * the lookup. `scopes`: "*" = every ordinary scope; privileged scopes ({@link PRIVILEGED_SCOPES}, e.g.
 * `models:download`) must be listed by name, so the default record grants none of them.
 */
export const ApiKeyRecordSchema = z.object({
  name: z.string().min(1).max(128),
  tenant: z.string().min(1).max(128).regex(/^[A-Za-z0-9._-]+$/, 'tenant must be URL- and R2-key-safe'),
  key_hash: Sha256HexSchema,
  scopes: z.array(z.string()).default(['*']),
  limits: ApiKeyLimitsSchema.default({}),
  /** ISO-8601 timestamp. */
  created_at: z.string(),
  revoked: z.boolean().optional(),
  revoked_at: z.string().optional(),
});
export type ApiKeyRecord = z.infer<typeof ApiKeyRecordSchema>;
export type ApiKeyRecordInput = z.input<typeof ApiKeyRecordSchema>;

/**
 * The scope that lets a key's jobs download any `hf.co/<org>/<repo>` model, not only the repositories the GPU
 * service's HF_ALLOWED_REPOS allows (an operator's or admin's key; the size limits still apply).
 */
export const MODELS_DOWNLOAD_SCOPE = 'models:download';
/** Scopes "*" does not imply. */
export const PRIVILEGED_SCOPES: readonly string[] = [MODELS_DOWNLOAD_SCOPE];

/** Whether a key record holds `scope` ("*" holds every scope but the privileged ones). */
export function hasScope(record: Pick<ApiKeyRecord, 'scopes'>, scope: string): boolean {
  if (record.scopes.includes(scope)) return true;
  return !PRIVILEGED_SCOPES.includes(scope) && record.scopes.includes('*');
}

/** Metadata stored beside each KV entry so `keys list` needs no value reads. */
export const ApiKeyListMetadataSchema = z.object({
  name: z.string(),
  tenant: z.string(),
  revoked: z.boolean().optional(),
  /** The record's privileged scopes ({@link PRIVILEGED_SCOPES}), so `keys list` shows who may download models. */
  privileged: z.array(z.string()).optional(),
});
export type ApiKeyListMetadata = z.infer<typeof ApiKeyListMetadataSchema>;

/**
 * The KV key of an API key's record: SHA-256 (FIPS 180-4) of the UTF-8 key as 64 lower-case hex
 * characters. Web Crypto only, so the edge (workerd) and scripts (Node ≥ 20) hash identically.
 */
export async function apiKeyHash(key: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** Options of {@link newApiKeyRecord}. */
export interface NewApiKeyRecordOptions {
  name: string;
  /** Default: the name (each key its own tenant). */
  tenant?: string;
  scopes?: string[];
  limits?: ApiKeyLimits;
  /** Creation time (default now). */
  createdAt?: Date;
}

/**
 * Build the validated record for a new key (what scripts/keys.ts stores and the edge's auth
 * middleware reads). @throws ZodError when name/tenant/limits break ApiKeyRecordSchema.
 */
export async function newApiKeyRecord(key: string, options: NewApiKeyRecordOptions): Promise<ApiKeyRecord> {
  return ApiKeyRecordSchema.parse({
    name: options.name,
    tenant: options.tenant ?? options.name,
    key_hash: await apiKeyHash(key),
    scopes: options.scopes ?? ['*'],
    limits: options.limits ?? {},
    created_at: (options.createdAt ?? new Date()).toISOString(),
  });
}
