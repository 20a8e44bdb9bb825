/**
 * Sharded safetensors (`<stem>.safetensors.index.json` + `<stem>-0000N-of-0000M.safetensors`) read as one weights file:
 * a fixture file split into shards at test time gives every tensor with the same key, dtype, shape and values;
 * an index that lists a missing shard, places a tensor in a shard without it, hides a shard's tensor, or names a
 * file outside its folder is refused naming the index and the rule.
 */
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { openShardedSafetensors } from '../../gpu-service/src/weights/sharded-safetensors';
import { fixtureDir, hasFixture } from '../helpers/checkpoint-fixtures';
import { writeShards } from '../helpers/flow-layout-files';

const available = hasFixture('checkpoints-dit');
const source = () => path.join(fixtureDir('checkpoints-dit/sd3.5'), 'diffusers/transformer/diffusion_pytorch_model.safetensors');
const STEM = 'diffusion_pytorch_model';
let tmp: string;

beforeAll(async () => {
  if (available) tmp = await mkdtemp(path.join(tmpdir(), 'shards-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A fresh folder with the source split in 3 shards (the weight map edited by `edit`). */
async function sharded(name: string, edit?: (m: Record<string, string>) => void): Promise<{ dir: string; index: string; shards: string[] }> {
  const dir = path.join(tmp, name);
  const shards = await writeShards(source(), dir, STEM, 3, edit);
  return { dir, index: path.join(dir, `${STEM}.safetensors.index.json`), shards };
}

describe.skipIf(!available)('sharded safetensors as one weights file', () => {
  it('holds every tensor of the unsharded file with the same dtype, shape and values, each read from its shard', async () => {
    const { index, shards, dir } = await sharded('ok');
    const whole = await openSafetensors(source());
    const file = await openShardedSafetensors(index);
    try {
      expect(file.shardPaths).toEqual(shards.map((s) => path.join(dir, s)));
      expect([...file.entries.keys()].sort()).toEqual([...whole.entries.keys()].sort());
      const map = JSON.parse(await readFile(index, 'utf8')).weight_map as Record<string, string>;
      for (const [key, e] of whole.entries) {
        const got = file.entries.get(key)!;
        expect({ dtype: got.dtype, shape: got.shape }, key).toEqual({ dtype: e.dtype, shape: e.shape });
        expect(file.shardOf(key)).toBe(path.join(dir, map[key]));
        expect(Buffer.from((await file.readFloat32(key)).buffer).equals(Buffer.from((await whole.readFloat32(key)).buffer)), key).toBe(true);
      }
      // Tensors of one fused group lie in different shards (round robin), as real shards split blocks.
      expect(new Set(['to_q', 'to_k', 'to_v'].map((p) => map[`transformer_blocks.0.attn.${p}.weight`])).size).toBeGreaterThan(1);
      await expect(file.readFloat32('nope')).rejects.toThrow(/has no tensor "nope"/);
    } finally {
      await file.close();
      await whole.close();
    }
  });

  it('refuses a missing shard, a tensor placed in a shard without it, a shard tensor the index hides, and a shard path outside the folder', async () => {
    const missing = await sharded('missing');
    await unlink(path.join(missing.dir, missing.shards[1]));
    await expect(openShardedSafetensors(missing.index)).rejects.toThrow(new RegExp(`index\\.json: lists shard ${missing.shards[1].replace(/\./g, '\\.')}, which is missing`));

    const misplaced = await sharded('misplaced');
    const json = JSON.parse(await readFile(misplaced.index, 'utf8')) as { weight_map: Record<string, string> };
    const wrong = misplaced.shards.find((s) => s !== json.weight_map['transformer_blocks.0.attn.to_q.weight'])!;
    json.weight_map['transformer_blocks.0.attn.to_q.weight'] = wrong;
    await writeFile(misplaced.index, JSON.stringify(json));
    await expect(openShardedSafetensors(misplaced.index)).rejects.toThrow(new RegExp(`places tensor "transformer_blocks\\.0\\.attn\\.to_q\\.weight" in ${wrong.replace(/\./g, '\\.')}, which has no such tensor`));

    const hidden = await sharded('hidden', (m) => {
      delete m['proj_out.weight'];
    });
    await expect(openShardedSafetensors(hidden.index)).rejects.toThrow(/holds tensor "proj_out\.weight", which the index does not list/);

    const outside = await sharded('outside', (m) => {
      m['proj_out.weight'] = '../other.safetensors';
    });
    await expect(openShardedSafetensors(outside.index)).rejects.toThrow(/weight_map\["proj_out\.weight"\] = "\.\.\/other\.safetensors" is not a \.safetensors file name in the index's folder/);

    await writeFile(path.join(tmp, 'no-map.json'), JSON.stringify({ metadata: {} }));
    await expect(openShardedSafetensors(path.join(tmp, 'no-map.json'))).rejects.toThrow(/has no "weight_map" object/);
  });
});
