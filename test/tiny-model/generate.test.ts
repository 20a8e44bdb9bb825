import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTinyModelFiles,
  generateTinyModel,
  resolveTinyModelOptions,
  TINY_DEFAULT_VARIANT,
  TINY_VARIANTS,
} from '../../scripts/tiny-model/generate';

const REPO = path.resolve(__dirname, '../..');

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(path.join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out.sort();
}

describe('generateTinyModel', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'tiny-model-generate-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes the diffusers/Optimum ONNX layout quickly', async () => {
    const started = performance.now();
    const info = await generateTinyModel(path.join(root, 'tiny-analytic'));
    expect(performance.now() - started).toBeLessThan(5000);
    const files = await listFiles(info.dir);
    expect(files).toEqual(info.files);
    for (const required of [
      'model_index.json',
      'scheduler/scheduler_config.json',
      'tokenizer/vocab.json',
      'tokenizer/merges.txt',
      'tokenizer/special_tokens_map.json',
      'tokenizer/tokenizer_config.json',
      'text_encoder/model.onnx',
      'unet/model.onnx',
      'vae_decoder/model.onnx',
      'vae_decoder/config.json',
      'vae_encoder/model.onnx',
      'vae_encoder/config.json',
    ]) {
      expect(files).toContain(required);
    }
    expect(files.some((f) => f.endsWith('.onnx_data'))).toBe(false);
  });

  it('is deterministic: the same options give byte-identical folders', async () => {
    const a = await generateTinyModel(path.join(root, 'det-a'), { predictionType: 'v_prediction' });
    const b = await generateTinyModel(path.join(root, 'det-b'), { predictionType: 'v_prediction' });
    expect(a.files).toEqual(b.files);
    for (const file of a.files) {
      const [x, y] = await Promise.all([readFile(path.join(a.dir, file)), readFile(path.join(b.dir, file))]);
      expect(x.equals(y), file).toBe(true);
    }
  });

  it('gives every variant byte-identical files when built twice, and different variants different UNets', () => {
    const unets = new Map<string, string>();
    for (const [name, options] of Object.entries(TINY_VARIANTS)) {
      const first = buildTinyModelFiles(options);
      const second = buildTinyModelFiles(options);
      expect([...first.keys()]).toEqual([...second.keys()]);
      for (const [file, bytes] of first) expect(Buffer.from(bytes).equals(Buffer.from(second.get(file)!)), `${name} ${file}`).toBe(true);
      unets.set(name, Buffer.from(first.get('unet/model.onnx')!).toString('base64'));
    }
    // Variants that change the UNet's graph or types must not collapse to the default one.
    for (const name of ['tiny-analytic-v', 'tiny-analytic-float-t', 'tiny-analytic-inpaint', 'tiny-analytic-fp16']) {
      expect(unets.get(name)).not.toBe(unets.get(TINY_DEFAULT_VARIANT));
    }
  });

  it('writes non-default config values where a pipeline must read them', async () => {
    const dir = path.join(root, 'tiny-analytic');
    const read = async (file: string) => JSON.parse(await readFile(path.join(dir, file), 'utf8'));
    const index = await read('model_index.json');
    expect(index._class_name).toBe('OnnxStableDiffusionPipeline');
    expect(index.native_size).toEqual([256, 256]);
    const scheduler = await read('scheduler/scheduler_config.json');
    expect(scheduler).toMatchObject({
      _class_name: 'EulerDiscreteScheduler',
      beta_start: 0.001,
      beta_end: 0.015,
      beta_schedule: 'scaled_linear',
      num_train_timesteps: 1000,
      prediction_type: 'epsilon',
      steps_offset: 1,
      timestep_spacing: 'leading',
    });
    expect((await read('vae_decoder/config.json')).scaling_factor).toBe(0.5);
    expect((await read('vae_encoder/config.json')).scaling_factor).toBe(0.5);
    expect((await read('text_encoder/config.json')).hidden_size).toBe(32);
    expect((await read('unet/config.json')).in_channels).toBe(4);
  });

  it('writes the variant-specific config: v_prediction, inpainting pipeline class', () => {
    const json = (files: Map<string, Uint8Array>, name: string) => JSON.parse(new TextDecoder().decode(files.get(name)));
    const v = buildTinyModelFiles(TINY_VARIANTS['tiny-analytic-v']);
    expect(json(v, 'scheduler/scheduler_config.json').prediction_type).toBe('v_prediction');
    const inpaint = buildTinyModelFiles(TINY_VARIANTS['tiny-analytic-inpaint']);
    expect(json(inpaint, 'model_index.json')._class_name).toBe('OnnxStableDiffusionInpaintPipeline');
    expect(json(inpaint, 'unet/config.json').in_channels).toBe(9);
  });

  it('stores the text encoder and UNet weights in model.onnx_data for the external-data variant', async () => {
    const ext = await generateTinyModel(path.join(root, 'ext'), TINY_VARIANTS['tiny-analytic-external']);
    const plain = path.join(root, 'tiny-analytic');
    for (const part of ['text_encoder', 'unet']) {
      const data = await stat(path.join(ext.dir, part, 'model.onnx_data'));
      const extModel = await stat(path.join(ext.dir, part, 'model.onnx'));
      const plainModel = await stat(path.join(plain, part, 'model.onnx'));
      expect(data.size).toBeGreaterThan(0);
      // The weights moved out: model.onnx shrank by at least the bytes of the tables it no longer holds.
      expect(plainModel.size - extModel.size).toBeGreaterThan(part === 'unet' ? 4000 : 400_000);
    }
  });

  it('replaces an existing folder instead of mixing old and new files', async () => {
    const dir = path.join(root, 'replace');
    await generateTinyModel(dir, TINY_VARIANTS['tiny-analytic-external']);
    const info = await generateTinyModel(dir);
    expect(await listFiles(dir)).toEqual(info.files);
    expect(info.files.some((f) => f.endsWith('.onnx_data'))).toBe(false);
  });

  it('rejects an unknown option value, naming the option', () => {
    expect(() => resolveTinyModelOptions({ timestepType: 'int32' as never })).toThrow(/timestepType/);
    expect(() => buildTinyModelFiles({ predictionType: 'sample' as never })).toThrow(/predictionType/);
  });

  it('runs as a script: --out and repeated --variant write those folders', async () => {
    const out = path.join(root, 'cli');
    const tsx = path.join(REPO, 'node_modules', '.bin', 'tsx');
    const { stdout } = await promisify(execFile)(
      tsx,
      ['scripts/tiny-model/generate.ts', '--out', out, '--variant', 'tiny-analytic', '--variant', 'tiny-analytic-v'],
      { cwd: REPO },
    );
    expect(stdout).toContain(path.join(out, 'tiny-analytic-v'));
    expect((await readdir(out)).sort()).toEqual(['tiny-analytic', 'tiny-analytic-v']);
    const files = buildTinyModelFiles(TINY_VARIANTS['tiny-analytic-v']);
    const written = await readFile(path.join(out, 'tiny-analytic-v', 'unet', 'model.onnx'));
    expect(written.equals(Buffer.from(files.get('unet/model.onnx')!))).toBe(true);
  });

  it('as a script, fails with a clear message for an unknown variant', async () => {
    const tsx = path.join(REPO, 'node_modules', '.bin', 'tsx');
    const run = promisify(execFile)(tsx, ['scripts/tiny-model/generate.ts', '--out', path.join(root, 'bad'), '--variant', 'nope'], { cwd: REPO });
    await expect(run).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('unknown variant "nope"') });
  });
});
