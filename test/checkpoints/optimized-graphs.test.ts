/**
 * The graphs onnxruntime optimizes for the CPU provider, saved once in a conversion-cache entry
 * (gpu-service/src/checkpoints/optimized-graphs.ts): the first load writes them, later loads open them without
 * optimizing and compute what the original graphs compute; other providers keep optimizing at load; a failed or
 * stale optimization leaves nothing behind. Runs on a small generated SD 1.x checkpoint (no ../shared needed).
 */
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpointModel, type CheckpointEngineOptions, type CheckpointRef } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { ContentHashes } from '../../gpu-service/src/checkpoints/content-hash';
import { ConversionCache } from '../../gpu-service/src/checkpoints/conversion-cache';
import { cpuFingerprint, optimizedFolderName } from '../../gpu-service/src/checkpoints/optimized-graphs';
import { ONNXRUNTIME_VERSION, OnnxModel, type Feed } from '../../gpu-service/src/onnx/session';
import { ensureSd15Checkpoint } from '../../scripts/bench/sd15/sd15-checkpoint';
import { normwiseRelError } from '../helpers/checkpoint-fixtures';
import { SMALL_SD1_CHECKPOINT } from '../helpers/small-sd1-checkpoint';

let modelsDir: string;
let engine: CheckpointEngineOptions;
let ref: CheckpointRef;

beforeAll(async () => {
  modelsDir = await mkdtemp(path.join(tmpdir(), 'optimized-graphs-'));
  const files = await ensureSd15Checkpoint(modelsDir, SMALL_SD1_CHECKPOINT);
  const cache = new ConversionCache(files.cacheDir);
  engine = { cache, hashes: new ContentHashes(cache.root), tokenizerDir: files.tokenizerDir, floatType: 'float32', attention: 'contrib' };
  ref = { id: 'sd1.5/small.safetensors', path: files.checkpoint, format: 'safetensors' };
});
afterAll(async () => {
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

const cpuFolder = `ort-${ONNXRUNTIME_VERSION}-cpu-${cpuFingerprint()}`;

function unetFeeds(channels: number, hidden: number): Record<string, Feed> {
  const [b, h, w, t] = [2, 8, 6, 5];
  return {
    sample: { data: Float32Array.from({ length: b * channels * h * w }, (_, i) => Math.sin(i * 0.7)), dims: [b, channels, h, w] },
    timestep: { data: Float32Array.from([999, 12.5]), dims: [b] },
    encoder_hidden_states: { data: Float32Array.from({ length: b * t * hidden }, (_, i) => Math.cos(i * 0.3)), dims: [b, t, hidden] },
  };
}

describe('graphs optimized for the CPU provider, saved in the cache entry', () => {
  it('the first load writes them, the next opens them without optimizing, and they compute what the originals compute', async () => {
    const first = await loadCheckpointModel(ref, engine, { executionProviders: ['cpu'] });
    await first.model.release();
    expect(first.converted).toBe(true);
    expect(first.optimized).toBe(true);
    expect(first.optimizationError).toBeUndefined();
    const saved = path.join(first.cacheDir, cpuFolder);
    expect((await readdir(saved)).sort()).toEqual(['text_encoder', 'unet', 'vae_decoder', 'vae_encoder']);
    for (const network of await readdir(saved)) expect((await stat(path.join(saved, network, 'model.onnx_data'))).size, network).toBeGreaterThan(0);

    const second = await loadCheckpointModel(ref, engine, { executionProviders: ['cpu'] });
    try {
      expect(second.converted).toBe(false);
      expect(second.optimized).toBe(false);
      expect(second.optimizationSeconds).toBe(0);
      expect(second.model.unet.path).toBe(path.join(saved, 'unet', 'model.onnx'));

      const original = await OnnxModel.open(path.join(second.cacheDir, 'unet', 'model.onnx'));
      try {
        const feeds = unetFeeds(second.model.unetInChannels, second.model.hiddenSize);
        const expected = (await original.run(feeds)).out_sample;
        const actual = (await second.model.unet.run(feeds)).out_sample;
        expect(actual.dims).toEqual(expected.dims);
        expect(normwiseRelError(actual.data, expected.data)).toBeLessThan(1e-5);
      } finally {
        await original.release();
      }
    } finally {
      await second.model.release();
    }
  });

  it('are saved for the CPU provider alone; other provider lists keep optimizing at load', () => {
    expect(cpuFingerprint()).toMatch(/^[0-9a-f]{12}$/);
    expect(optimizedFolderName({})).toBe(cpuFolder);
    expect(optimizedFolderName({ executionProviders: ['cpu'] })).toBe(cpuFolder);
    expect(optimizedFolderName({ executionProviders: ['cuda', 'cpu'] })).toBeUndefined();
    expect(optimizedFolderName({ executionProviders: ['webgpu'] })).toBeUndefined();
  });

  it('writing them for a new onnxruntime version removes the folders other versions wrote for this CPU, not another CPU\'s', async () => {
    const loaded = await loadCheckpointModel(ref, engine, {});
    await loaded.model.release();
    const staleVersion = `ort-0.0.1-cpu-${cpuFingerprint()}`;
    const otherCpu = `ort-${ONNXRUNTIME_VERSION}-cpu-000000000000`;
    await rm(path.join(loaded.cacheDir, cpuFolder), { recursive: true });
    for (const name of [staleVersion, otherCpu]) await mkdir(path.join(loaded.cacheDir, name, 'unet'), { recursive: true });
    const again = await loadCheckpointModel(ref, engine, {});
    await again.model.release();
    expect(again.optimized).toBe(true);
    const folders = (await readdir(again.cacheDir)).filter((n) => n.startsWith('ort-')).sort();
    expect(folders).toEqual([cpuFolder, otherCpu].sort());
  });
});

describe('ConversionCache.derive', () => {
  it('a failed write leaves neither the folder nor a temporary one; a missing entry is refused', async () => {
    const loaded = await loadCheckpointModel(ref, engine, {});
    await loaded.model.release();
    const key = path.basename(loaded.cacheDir);
    await expect(
      engine.cache.derive(key, 'half-written', async (dir) => {
        await mkdir(path.join(dir, 'unet'));
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(await readdir(loaded.cacheDir)).not.toContain('half-written');
    expect((await readdir(engine.cache.root)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    await expect(engine.cache.derive('0123456789abcdef0123456789abcdef', 'x', async () => {})).rejects.toThrow(/no complete entry/);
  });

  it('an existing folder is kept and not written again', async () => {
    const loaded = await loadCheckpointModel(ref, engine, {});
    await loaded.model.release();
    let writes = 0;
    const result = await engine.cache.derive(path.basename(loaded.cacheDir), cpuFolder, async () => {
      writes++;
    });
    expect(result).toMatchObject({ built: false, seconds: 0, dir: path.join(loaded.cacheDir, cpuFolder) });
    expect(writes).toBe(0);
  });
});
