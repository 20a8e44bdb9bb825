import { newApiKeyRecord, type ApiKeyLimits } from '@image-api/shared/api/api-key';

/** Options of {@link seedApiKey}. */
export interface SeedApiKeyOptions {
  key: string;
  name?: string;
  tenant?: string;
  revoked?: boolean;
  /** The key's rate limits (default none). */
  limits?: ApiKeyLimits;
  /** The key's scopes (default ["*"]). */
  scopes?: string[];
}

/**
 * Write a key record into the API_KEYS KV binding the way scripts/keys.ts does (hash → record,
 * name/tenant/revoked as list metadata). Returns the hash.
 */
export async function seedApiKey(kv: KVNamespace, options: SeedApiKeyOptions): Promise<string> {
  const record = await newApiKeyRecord(options.key, {
    name: options.name ?? 'test',
    tenant: options.tenant ?? 'tenant-a',
    createdAt: new Date(0),
    limits: options.limits,
    scopes: options.scopes,
  });
  if (options.revoked) Object.assign(record, { revoked: true, revoked_at: new Date(0).toISOString() });
  await kv.put(record.key_hash, JSON.stringify(record), {
    metadata: { name: record.name, tenant: record.tenant, revoked: options.revoked },
  });
  return record.key_hash;
}
