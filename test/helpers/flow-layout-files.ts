/**
 * Builds, at test time, the checkpoint layouts users have from the checkpoints-dit fixtures' tensors (same stored
 * dtypes and values, other keys or files): single files with their text encoders inside (`text_encoders.*` as
 * Stability's SD 3.5 files and ComfyUI's all-in-one FLUX saves name them) and sharded diffusers components
 * (`<stem>-0000N-of-0000M.safetensors` + `<stem>.safetensors.index.json`, as transformers / diffusers
 * `save_pretrained(max_shard_size=…)` write them).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ELEMENT_BYTES } from '../../gpu-service/src/weights/decode';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { elementCount } from '../../gpu-service/src/weights/tensor-file';
import { writeSafetensors, type TensorToWrite } from '../../gpu-service/src/weights/safetensors-writer';

/** One source file's tensors to copy: `rename` gives the new key (undefined = leave the tensor out). */
export interface TensorSource {
  file: string;
  rename: (key: string) => string | undefined;
}

/** Every tensor of `sources`, renamed, with its stored dtype, shape and values (read when written). */
export async function collectTensors(sources: readonly TensorSource[]): Promise<TensorToWrite[]> {
  const out: TensorToWrite[] = [];
  for (const s of sources) {
    const f = await openSafetensors(s.file);
    const values = new Map<string, Float32Array>();
    for (const e of f.entries.values()) {
      const key = s.rename(e.key);
      if (key === undefined) continue;
      values.set(key, await f.readFloat32(e.key));
      out.push({ key, dtype: e.dtype as TensorToWrite['dtype'], shape: e.shape, values: () => values.get(key)! });
    }
    await f.close();
  }
  return out;
}

/** Write one single file from `sources` (optionally without the keys `drop` names). */
export async function writeSingleFile(target: string, sources: readonly TensorSource[], drop: (key: string) => boolean = () => false): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true });
  await writeSafetensors(target, (await collectTensors(sources)).filter((t) => !drop(t.key)));
}

/** A source copying `file` with `prefix` put before every key. */
export function prefixed(file: string, prefix: string, keep: (key: string) => boolean = () => true): TensorSource {
  return { file, rename: (k) => (keep(k) ? prefix + k : undefined) };
}

/**
 * Split the tensors of `file` into `shards` files `<stem>-0000N-of-0000M.safetensors` in `dir` (round robin, so
 * every shard holds tensors) and write `<stem>.safetensors.index.json` with `metadata.total_size` and `weight_map`.
 * @param editIndex may change the weight map before it is written (broken-index tests).
 */
export async function writeShards(file: string, dir: string, stem: string, shards: number, editIndex?: (weightMap: Record<string, string>) => void): Promise<string[]> {
  const tensors = await collectTensors([{ file, rename: (k) => k }]);
  const pad = (n: number) => String(n).padStart(5, '0');
  const names = Array.from({ length: shards }, (_, i) => `${stem}-${pad(i + 1)}-of-${pad(shards)}.safetensors`);
  const weightMap: Record<string, string> = {};
  let total = 0;
  await mkdir(dir, { recursive: true });
  for (let s = 0; s < shards; s++) {
    const part = tensors.filter((_, i) => i % shards === s);
    await writeSafetensors(path.join(dir, names[s]), part);
    for (const t of part) total += elementCount(t.shape) * ELEMENT_BYTES[t.dtype];
    for (const t of part) weightMap[t.key] = names[s];
  }
  editIndex?.(weightMap);
  await writeFile(path.join(dir, `${stem}.safetensors.index.json`), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return names;
}
