import type { ApiKeyRecordInput } from '../../../shared/src/api/api-key';
import { sha256Hex } from '../../../edge/src/lib/crypto';

/** Options of {@link seedApiKey}. */
export interface SeedApiKeyOptions {
  key: string;
  name?: string;
  tenant?: string;
  revoked?: boolean;
}

/** Write a key record into the API_KEYS KV binding the way scripts/keys.ts does (hash → record). */
export async function seedApiKey(kv: KVNamespace, options: SeedApiKeyOptions): Promise<string> {
  const keyHash = await sha256Hex(options.key);
  const record: ApiKeyRecordInput = {
    name: options.name ?? 'test',
    tenant: options.tenant ?? 'tenant-a',
    key_hash: keyHash,
    scopes: ['*'],
    limits: {},
    created_at: new Date(0).toISOString(),
    ...(options.revoked ? { revoked: true, revoked_at: new Date(0).toISOString() } : {}),
  };
  await kv.put(keyHash, JSON.stringify(record), { metadata: { name: record.name, tenant: record.tenant, revoked: options.revoked } });
  return keyHash;
}
