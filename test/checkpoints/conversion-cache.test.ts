import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentHashes, sha256File } from '../../gpu-service/src/checkpoints/content-hash';
import { ConversionCache } from '../../gpu-service/src/checkpoints/conversion-cache';
import { DataType, OnnxGraph } from '../../gpu-service/src/graphs/onnx-graph';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'conversion-cache-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A one-node graph whose weight comes from `load`. */
function graph(load: () => Promise<Float32Array>): OnnxGraph {
  const g = new OnnxGraph('t');
  const x = g.input('x', DataType.FLOAT, [2]);
  g.floatOutput('y', g.node('Add', [x, g.weight('w', [2], load)]), [2]);
  return g;
}

const plan = (key: string, load: () => Promise<Float32Array>) => ({ key, graphs: [{ folder: 'unet', build: () => graph(load) }], files: [{ path: 'model_index.json', contents: '{}' }] });

describe('conversion cache', () => {
  it('builds an entry once, even when asked twice at the same time, and reuses it afterwards', async () => {
    const cache = new ConversionCache(root);
    let loads = 0;
    const load = async () => {
      loads++;
      return Float32Array.from([1, 2]);
    };
    const [a, b] = await Promise.all([cache.ensure(plan('aa11', load)), cache.ensure(plan('aa11', load))]);
    expect(loads).toBe(1);
    expect(a.built).toBe(true);
    expect(b).toBe(a);
    expect(await cache.state('aa11')).toBe('cached');
    const again = await cache.ensure(plan('aa11', load));
    expect(again).toMatchObject({ built: false, dir: path.join(root, 'aa11') });
    expect(await readdir(path.join(root, 'aa11', 'unet'))).toEqual(['model.onnx', 'model.onnx_data']);
  });

  it('a build that fails part-way leaves neither an entry nor a temporary folder', async () => {
    const cache = new ConversionCache(root);
    await expect(cache.ensure(plan('bb22', async () => Promise.reject(new Error('tensor cut short'))))).rejects.toThrow('tensor cut short');
    expect(await readdir(root)).toEqual([]);
    expect(await cache.state('bb22')).toBe('missing');
  });

  it('sweep removes the temporary folders of dead processes and keeps live ones', async () => {
    const cache = new ConversionCache(root);
    // pid 2^22 + 7 is above Linux's default pid_max: no such process.
    await mkdir(path.join(root, `.tmp-cc33-${2 ** 22 + 7}-1`), { recursive: true });
    await mkdir(path.join(root, `.tmp-cc33-${process.pid}-9`), { recursive: true });
    expect(await cache.sweep()).toEqual([`.tmp-cc33-${2 ** 22 + 7}-1`]);
    expect(await readdir(root)).toEqual([`.tmp-cc33-${process.pid}-9`]);
  });
});

describe('content hashes', () => {
  it('hash a file once and remember it until the file changes', async () => {
    const file = path.join(root, 'model.safetensors');
    await writeFile(file, 'first');
    const hashes = new ContentHashes(path.join(root, '.cache'));
    expect(await hashes.known(file)).toBeUndefined();
    const h = await hashes.of(file);
    expect(h).toBe(await sha256File(file));
    // A fresh instance reads the remembered hash from hashes.json without hashing.
    expect(await new ContentHashes(path.join(root, '.cache')).known(file)).toBe(h);
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(file, 'second, longer');
    expect(await hashes.known(file)).toBeUndefined();
    expect(await hashes.of(file)).not.toBe(h);
  });
});
