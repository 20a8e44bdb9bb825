import { apiKeyHash } from '@image-api/shared/api/api-key';
import { createKey, type CreateKeyOptions } from '../keys';

/** The tenant of every development key, so images and tasks of one machine's dev keys share a prefix. */
export const DEV_TENANT = 'dev';

/**
 * Install `key` as a development API key without touching any other key: it is named
 * `dev-<first 12 hex of its hash>`, so the same key (DEV_API_KEY on every start) re-installs under the same
 * name, and a new random key gets a name of its own. A second `npm start` thus never revokes the key a
 * running stack printed.
 * @returns the key's name.
 */
export async function installDevKey(key: string, options: Omit<CreateKeyOptions, 'name' | 'key' | 'replace' | 'tenant'>): Promise<string> {
  const name = `dev-${(await apiKeyHash(key)).slice(0, 12)}`;
  await createKey({ ...options, name, key, tenant: DEV_TENANT, replace: false });
  return name;
}
