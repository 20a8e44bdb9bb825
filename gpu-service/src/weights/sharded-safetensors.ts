/**
 * Sharded safetensors weights as one weights file: `<stem>.safetensors.index.json` (`{"metadata": {…},
 * "weight_map": {tensor key: shard file name}}`, as transformers' / diffusers' `save_pretrained(max_shard_size=…)`
 * write it, e.g. `transformer/diffusion_pytorch_model.safetensors.index.json` with
 * `diffusion_pytorch_model-00001-of-00003.safetensors`, …) plus the shards it names, in the same folder.
 *
 * The index is checked against the shards before anything is read: the weight map is a non-empty object of shard
 * file names (plain names in the index's folder, `.safetensors`), every listed shard exists and is a valid
 * safetensors file (safetensors.ts), every tensor is in the shard the index names, and no shard holds a tensor the
 * index does not list (which the index would hide). The result reads each tensor from its shard; its entries keep
 * their shard's byte offsets (see `shardOf`).
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { openSafetensors } from './safetensors';
import { WeightsFileError, type TensorEntry, type TensorFile } from './tensor-file';

/** Sharded weights opened as one TensorFile. */
export interface ShardedTensorFile extends TensorFile {
  /** The shard files, in index order of first appearance (absolute paths). */
  readonly shardPaths: readonly string[];
  /** The shard a tensor is stored in (its entry's offset is within that file). */
  shardOf(key: string): string;
}

/**
 * Open `<stem>.safetensors.index.json` and its shards.
 * @throws WeightsFileError naming the index and the rule it breaks (not JSON, no weight_map, a shard name outside the
 *         folder, a missing shard, a tensor not in the shard the index names, a shard tensor the index does not
 *         list); a shard's own WeightsFileError when its header is invalid.
 */
export async function openShardedSafetensors(indexPath: string): Promise<ShardedTensorFile> {
  const fail = (message: string): never => {
    throw new WeightsFileError(indexPath, message);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (err) {
    fail(`not a readable JSON shard index (${(err as Error).message})`);
  }
  const map = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) fail('has no "weight_map" object (tensor key → shard file)');
  const weightMap = map as Record<string, unknown>;
  const shardNames: string[] = [];
  for (const [key, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || shard !== basename(shard) || shard === '..' || !shard.endsWith('.safetensors')) {
      fail(`weight_map["${key}"] = ${JSON.stringify(shard)} is not a .safetensors file name in the index's folder`);
    }
    if (!shardNames.includes(shard as string)) shardNames.push(shard as string);
  }
  if (shardNames.length === 0) fail('weight_map lists no tensors');

  const dir = dirname(indexPath);
  const shards = new Map<string, TensorFile>();
  const closeAll = () => Promise.all([...shards.values()].map((f) => f.close()));
  try {
    for (const name of shardNames) {
      try {
        shards.set(name, await openSafetensors(join(dir, name)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') fail(`lists shard ${name}, which is missing`);
        throw err;
      }
    }
    const entries = new Map<string, TensorEntry>();
    const owner = new Map<string, TensorFile>();
    for (const [key, shard] of Object.entries(weightMap) as Array<[string, string]>) {
      const file = shards.get(shard)!;
      const entry = file.entries.get(key);
      if (!entry) fail(`places tensor "${key}" in ${shard}, which has no such tensor`);
      entries.set(key, entry!);
      owner.set(key, file);
    }
    for (const [name, file] of shards) {
      for (const key of file.entries.keys()) if (weightMap[key] !== name) fail(`${name} holds tensor "${key}", which the index ${weightMap[key] === undefined ? 'does not list' : `places in ${String(weightMap[key])}`}`);
    }
    const metadata: Record<string, string> = {};
    const indexMeta = (parsed as { metadata?: unknown }).metadata;
    if (indexMeta && typeof indexMeta === 'object') for (const [k, v] of Object.entries(indexMeta)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
    let sizeBytes = 0;
    for (const f of shards.values()) sizeBytes += f.sizeBytes;
    return {
      path: indexPath,
      format: 'safetensors',
      sizeBytes,
      metadata,
      entries,
      shardPaths: shardNames.map((n) => join(dir, n)),
      shardOf: (key) => {
        const f = owner.get(key);
        if (!f) throw new WeightsFileError(indexPath, `has no tensor "${key}"`);
        return f.path;
      },
      readFloat32: async (key) => {
        const f = owner.get(key);
        if (!f) throw new WeightsFileError(indexPath, `has no tensor "${key}"`);
        return f.readFloat32(key);
      },
      close: async () => {
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
