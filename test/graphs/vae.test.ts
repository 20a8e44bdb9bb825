/**
 * VAE (AutoencoderKL) detection and graphs against upstream diffusers outputs on the tiny fixtures
 * (SD 1.x single file and standalone VAE, SD 2.x, SDXL, FLUX.1 ae, SD 3.5 single file), both attention kinds,
 * plus detection and graph shape checks on other configurations written here.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectVaeConfig, VAE_FAMILY_SCALING, VaeConfigError, type VaeConfig, type VaeHints } from '../../gpu-service/src/checkpoints/detect/vae-config';
import { buildVaeDecoder, buildVaeEncoder, type VaeGraphOptions } from '../../gpu-service/src/graphs/vae';
import type { OnnxGraph } from '../../gpu-service/src/graphs/onnx-graph';
import type { AttentionKind } from '../../gpu-service/src/graphs/layers';
import { OnnxModel } from '../../gpu-service/src/onnx/session';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { writeSafetensors, type TensorToWrite } from '../../gpu-service/src/weights/safetensors-writer';
import type { TensorFile } from '../../gpu-service/src/weights/tensor-file';
import { MissingWeightError, WeightSet, WeightShapeError } from '../../gpu-service/src/weights/weight-set';
import { expectWithinTolerance, hasFixture, normwiseRelError, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';

let dir: string;
const opened: TensorFile[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vae-graph-'));
});
afterAll(async () => {
  await Promise.all(opened.map((f) => f.close()));
  await rm(dir, { recursive: true, force: true });
});

let graphCount = 0;
/** Save `graph` under the temp folder and open it on the CPU provider. */
async function open(graph: OnnxGraph): Promise<OnnxModel> {
  const saved = await graph.save(path.join(dir, `g${graphCount++}`));
  return OnnxModel.open(saved.modelPath);
}

async function weightsOf(file: string, prefix: string): Promise<WeightSet> {
  const f = await openSafetensors(file);
  opened.push(f);
  return WeightSet.fromFile(f, prefix);
}

/** max|a − e| ≤ atol (the checkpoints-xl / checkpoints-dit pass rule). */
function expectWithinAtol(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number): void {
  expect(actual.length, `${label}: element count`).toBe(expected.length);
  let err = 0;
  for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(actual[i] - expected[i]));
  expect(err, `${label}: max abs error ${err.toExponential(3)} (normwise rel ${normwiseRelError(actual, expected).toExponential(3)}) exceeds ${atol}`).toBeLessThanOrEqual(atol);
}

/** The fields of a diffusers AutoencoderKL config the tests compare with. */
interface DiffusersVaeConfig {
  in_channels: number;
  out_channels: number;
  block_out_channels: number[];
  layers_per_block: number;
  latent_channels: number;
  norm_num_groups: number;
  scaling_factor: number;
  shift_factor: number | null;
  use_quant_conv: boolean;
  use_post_quant_conv: boolean;
  mid_block_add_attention: boolean;
}

interface FixtureVae {
  name: string;
  /** Fixture family folder. */
  family: string;
  /** Weights file relative to the family folder, and the VAE prefix in it. */
  file: string;
  prefix: string;
  /** The family's diffusers VAE config. */
  vaeConfig: (f: FixtureFamily) => DiffusersVaeConfig;
  decode: string[];
  encode: string[];
  /** The pass rule: 'rel' (checkpoints/) or 'atol' (checkpoints-xl, checkpoints-dit). */
  rule: 'rel' | 'atol';
  /** Its entry in VAE_FAMILY_SCALING. */
  scaling: keyof typeof VAE_FAMILY_SCALING;
}

const sdConfig = (f: FixtureFamily) => (f.json.configs as { vae: DiffusersVaeConfig }).vae;
const modelsConfig = (model: string) => (f: FixtureFamily) => (f.json.models as Record<string, { vae: DiffusersVaeConfig }>)[model].vae;

const FIXTURE_VAES: FixtureVae[] = [
  { name: 'SD 1.5 single file', family: 'checkpoints/sd15-tiny', file: 'sd15-tiny.safetensors', prefix: 'first_stage_model.', vaeConfig: sdConfig, decode: ['sd15.vae.decode.0', 'sd15.vae.decode.1'], encode: ['sd15.vae.encode'], rule: 'rel', scaling: 'sd1' },
  { name: 'SD 1.5 standalone VAE', family: 'checkpoints/sd15-tiny', file: 'vae/tiny-vae-ft-mse.safetensors', prefix: '', vaeConfig: sdConfig, decode: ['sd15.vae_override.decode.0', 'sd15.vae_override.decode.1'], encode: ['sd15.vae_override.encode'], rule: 'rel', scaling: 'sd1' },
  { name: 'SD 2.x single file', family: 'checkpoints/sd2-tiny', file: 'sd2-tiny.safetensors', prefix: 'first_stage_model.', vaeConfig: sdConfig, decode: ['sd2.vae.decode.0'], encode: ['sd2.vae.encode'], rule: 'rel', scaling: 'sd2' },
  { name: 'SDXL single file', family: 'checkpoints-xl', file: 'sdxl-base/sd_xl_base_tiny.safetensors', prefix: 'first_stage_model.', vaeConfig: modelsConfig('sdxl-base'), decode: ['sdxl.vae.decode'], encode: ['sdxl.vae.encode'], rule: 'atol', scaling: 'sdxl' },
  { name: 'FLUX.1 ae', family: 'checkpoints-dit/flux-schnell', file: 'ae.safetensors', prefix: '', vaeConfig: modelsConfig('flux-schnell'), decode: ['flux.vae.decode'], encode: ['flux.vae.encode'], rule: 'atol', scaling: 'flux' },
  { name: 'SD 3.5 single file', family: 'checkpoints-dit/sd3.5', file: 'sd3.5-tiny.safetensors', prefix: 'first_stage_model.', vaeConfig: modelsConfig('sd3.5'), decode: ['sd35.vae.decode'], encode: ['sd35.vae.encode'], rule: 'atol', scaling: 'sd3' },
];

const ATTENTION_KINDS: AttentionKind[] = ['contrib', 'standard'];

for (const fx of FIXTURE_VAES) {
  describe.skipIf(!hasFixture(fx.family))(`VAE ${fx.name} (${fx.family}/${fx.file})`, () => {
    let family: FixtureFamily;
    let weights: WeightSet;
    let upstream: DiffusersVaeConfig;
    let config: VaeConfig;
    beforeAll(async () => {
      family = await openFixtureFamily(fx.family);
      opened.push(family.reference);
      weights = await weightsOf(path.join(family.dir, fx.file), fx.prefix);
      upstream = fx.vaeConfig(family);
      const hints: VaeHints = { normGroups: upstream.norm_num_groups, scalingFactor: upstream.scaling_factor, shiftFactor: upstream.shift_factor ?? 0 };
      config = detectVaeConfig(weights, hints);
    });

    it('detects the configuration diffusers was built with', () => {
      expect(config.blockOutChannels).toEqual(upstream.block_out_channels);
      expect(config.numResBlocks).toBe(upstream.layers_per_block);
      expect(config.latentChannels).toBe(upstream.latent_channels);
      expect(config.encoder?.inChannels).toBe(upstream.in_channels);
      expect(config.decoder?.outChannels).toBe(upstream.out_channels);
      expect(config.encoder?.quantConv).toBe(upstream.use_quant_conv);
      expect(config.decoder?.postQuantConv).toBe(upstream.use_post_quant_conv);
      expect(config.encoder?.midAttention).toBe(upstream.mid_block_add_attention);
      expect(config.decoder?.midAttention).toBe(upstream.mid_block_add_attention);
      expect(config.encoder?.attentionLevels).toEqual([]);
      expect(config.decoder?.attentionLevels).toEqual([]);
      expect(config.downsampleFactor).toBe(8);
      expect(config.eps).toBe(1e-6);
      expect(config.scalingFactor).toBe(upstream.scaling_factor);
      expect(VAE_FAMILY_SCALING[fx.scaling]).toEqual({ scalingFactor: upstream.scaling_factor, shiftFactor: upstream.shift_factor ?? 0 });
    });

    for (const attention of ATTENTION_KINDS) {
      const opts: VaeGraphOptions = { attention };
      it(`decodes like diffusers (${attention} attention)`, async () => {
        const model = await open(buildVaeDecoder(config, weights, opts));
        try {
          for (const id of fx.decode) {
            const c = family.case(id);
            const z = await family.tensor(c.inputs.z);
            const expected = await family.tensor(c.outputs.sample);
            const out = (await model.run({ latent_sample: { data: z.data, dims: z.shape } })).sample;
            expect(out.dims, `${id}: sample dims`).toEqual(expected.shape);
            checkOutput(fx, c, 'sample', out.data, expected.data);
          }
        } finally {
          await model.release();
        }
      });

      it(`encodes like diffusers (${attention} attention)`, async () => {
        const model = await open(buildVaeEncoder(config, weights, opts));
        try {
          for (const id of fx.encode) {
            const c = family.case(id);
            const image = await family.tensor(c.inputs.image);
            const out = await model.run({ sample: { data: image.data, dims: image.shape } });
            const mean = out.latent_sample.data;
            const logvar = out.latent_logvar.data;
            const expectedMean = await family.tensor(c.outputs.mean);
            expect(out.latent_sample.dims, `${id}: mean dims`).toEqual(expectedMean.shape);
            expect(out.latent_logvar.dims, `${id}: logvar dims`).toEqual(expectedMean.shape);
            const produced: Record<string, Float32Array> = { mean, logvar };
            if (c.inputs.noise) {
              // The pipeline's part, as diffusers' DiagonalGaussianDistribution: std = exp(logvar/2), sample = mean + std·noise.
              const noise = (await family.tensor(c.inputs.noise)).data;
              const std = logvar.map((lv) => Math.exp(0.5 * lv));
              const sample = mean.map((m, i) => m + std[i] * noise[i]);
              Object.assign(produced, { std, sample, sample_scaled: sample.map((s) => s * config.scalingFactor) });
            }
            expect(Object.keys(produced).sort(), `${id}: outputs`).toEqual(Object.keys(c.outputs).sort());
            for (const [role, data] of Object.entries(produced)) checkOutput(fx, c, role, data, (await family.tensor(c.outputs[role])).data);
          }
        } finally {
          await model.release();
        }
      });
    }
  });
}

describe.skipIf(!hasFixture('checkpoints/sd15-tiny'))('VAE float16 graphs', () => {
  it('run on onnxruntime CPU and land within the fixtures\' float16 bound (1e-2) of diffusers\' float32 outputs', async () => {
    const family = await openFixtureFamily('checkpoints/sd15-tiny');
    opened.push(family.reference);
    const weights = await weightsOf(path.join(family.dir, 'sd15-tiny.safetensors'), 'first_stage_model.');
    const config = detectVaeConfig(weights, { normGroups: sdConfig(family).norm_num_groups });
    const dec = await open(buildVaeDecoder(config, weights, { floatType: 'float16' }));
    const enc = await open(buildVaeEncoder(config, weights, { floatType: 'float16' }));
    try {
      expect(dec.inputs[0]).toMatchObject({ name: 'latent_sample', type: 'float16' });
      const z = await family.tensor('sd15.vae.decode.0.z');
      const sample = (await dec.run({ latent_sample: { data: z.data, dims: z.shape } })).sample.data;
      expectWithinTolerance('float16 decode', sample, (await family.tensor('sd15.vae.decode.0.sample')).data, 1e-2);
      const image = await family.tensor('sd15.vae.encode.image');
      const out = await enc.run({ sample: { data: image.data, dims: image.shape } });
      expectWithinTolerance('float16 mean', out.latent_sample.data, (await family.tensor('sd15.vae.encode.mean')).data, 1e-2);
      expectWithinTolerance('float16 logvar', out.latent_logvar.data, (await family.tensor('sd15.vae.encode.logvar')).data, 1e-2);
    } finally {
      await Promise.all([dec.release(), enc.release()]);
    }
  });
});

function checkOutput(fx: FixtureVae, c: ReturnType<FixtureFamily['case']>, role: string, actual: Float32Array, expected: Float32Array): void {
  const label = `${c.id} ${role}`;
  if (fx.rule === 'rel') {
    expectWithinTolerance(label, actual, expected, c.tolerance.rel);
    return;
  }
  const tol = c.tolerance as unknown as { atol: number; per_output?: Record<string, { atol: number }> };
  expectWithinAtol(label, actual, expected, tol.per_output?.[role]?.atol ?? tol.atol);
}

// ---------------------------------------------------------------------------------------------------------------
// Other configurations: LDM VAE state dicts written here from an LDM ddconfig, random weights.

interface LdmVaeSpec {
  ch: number;
  chMult: number[];
  numResBlocks: number;
  zChannels: number;
  /** embed_dim when quant convs are written. */
  embedDim?: number;
  inChannels?: number;
  outCh?: number;
  /** Levels with attention blocks (LDM attn_resolutions as level indices). */
  attentionLevels?: number[];
  midAttention?: boolean;
  parts?: Array<'encoder' | 'decoder'>;
}

/** Deterministic pseudo-random values in [−scale, scale] (mulberry32). */
function randomValues(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** The tensors of LDM's Encoder / Decoder / quant convs for `spec` (module layout as in ldm model.py). */
function ldmVaeTensors(spec: LdmVaeSpec): TensorToWrite[] {
  const tensors: TensorToWrite[] = [];
  const add = (key: string, shape: number[], kind: 'conv' | 'gamma' | 'bias') => {
    const seed = tensors.length + 1;
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length === 4 ? shape[1] * shape[2] * shape[3] : 1;
    tensors.push({
      key,
      dtype: 'F32',
      shape,
      values: () => (kind === 'gamma' ? randomValues(n, seed, 0.2).map((v) => 1 + v) : randomValues(n, seed, kind === 'conv' ? Math.sqrt(3 / fanIn) : 0.1)),
    });
  };
  const conv = (prefix: string, out: number, inC: number, k: number) => {
    add(`${prefix}.weight`, [out, inC, k, k], 'conv');
    add(`${prefix}.bias`, [out], 'bias');
  };
  const norm = (prefix: string, C: number) => {
    add(`${prefix}.weight`, [C], 'gamma');
    add(`${prefix}.bias`, [C], 'bias');
  };
  const resnet = (prefix: string, inC: number, outC: number) => {
    norm(`${prefix}.norm1`, inC);
    conv(`${prefix}.conv1`, outC, inC, 3);
    norm(`${prefix}.norm2`, outC);
    conv(`${prefix}.conv2`, outC, outC, 3);
    if (inC !== outC) conv(`${prefix}.nin_shortcut`, outC, inC, 1);
  };
  const attn = (prefix: string, C: number) => {
    norm(`${prefix}.norm`, C);
    for (const p of ['q', 'k', 'v', 'proj_out']) conv(`${prefix}.${p}`, C, C, 1);
  };
  const mid = (prefix: string, C: number) => {
    resnet(`${prefix}.block_1`, C, C);
    if (spec.midAttention ?? true) attn(`${prefix}.attn_1`, C);
    resnet(`${prefix}.block_2`, C, C);
  };
  const widths = spec.chMult.map((m) => m * spec.ch);
  const L = widths.length;
  const parts = spec.parts ?? ['encoder', 'decoder'];
  const attnLevels = spec.attentionLevels ?? [];
  if (parts.includes('encoder')) {
    conv('encoder.conv_in', spec.ch, spec.inChannels ?? 3, 3);
    let cin = spec.ch;
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < spec.numResBlocks; j++) {
        resnet(`encoder.down.${i}.block.${j}`, cin, widths[i]);
        cin = widths[i];
        if (attnLevels.includes(i)) attn(`encoder.down.${i}.attn.${j}`, cin);
      }
      if (i < L - 1) conv(`encoder.down.${i}.downsample.conv`, cin, cin, 3);
    }
    mid('encoder.mid', cin);
    norm('encoder.norm_out', cin);
    conv('encoder.conv_out', 2 * spec.zChannels, cin, 3);
    if (spec.embedDim) conv('quant_conv', 2 * spec.embedDim, 2 * spec.zChannels, 1);
  }
  if (parts.includes('decoder')) {
    if (spec.embedDim) conv('post_quant_conv', spec.zChannels, spec.embedDim, 1);
    let cin = widths[L - 1];
    conv('decoder.conv_in', cin, spec.zChannels, 3);
    mid('decoder.mid', cin);
    for (let i = L - 1; i >= 0; i--) {
      for (let j = 0; j <= spec.numResBlocks; j++) {
        resnet(`decoder.up.${i}.block.${j}`, cin, widths[i]);
        cin = widths[i];
        if (attnLevels.includes(i)) attn(`decoder.up.${i}.attn.${j}`, cin);
      }
      if (i > 0) conv(`decoder.up.${i}.upsample.conv`, cin, cin, 3);
    }
    norm('decoder.norm_out', cin);
    conv('decoder.conv_out', spec.outCh ?? 3, cin, 3);
  }
  return tensors;
}

let fileCount = 0;
/** Write `tensors` (optionally under a prefix) and open them as a WeightSet. */
async function writtenWeights(tensors: TensorToWrite[], prefix = ''): Promise<WeightSet> {
  const file = path.join(dir, `vae${fileCount++}.safetensors`);
  await writeSafetensors(
    file,
    tensors.map((t) => ({ ...t, key: prefix + t.key })),
  );
  return weightsOf(file, prefix);
}

describe('VAE detection and graphs on other configurations', () => {
  it('3 levels, 16 latent channels, no quant convs, attention at level 2, 4 groups: detected and runnable both ways', async () => {
    const spec: LdmVaeSpec = { ch: 8, chMult: [1, 2, 3], numResBlocks: 1, zChannels: 16, attentionLevels: [2] };
    const w = await writtenWeights(ldmVaeTensors(spec), 'first_stage_model.');
    const config = detectVaeConfig(w, { normGroups: 4 });
    expect(config).toEqual({
      ch: 8,
      chMult: [1, 2, 3],
      blockOutChannels: [8, 16, 24],
      numResBlocks: 1,
      zChannels: 16,
      latentChannels: 16,
      downsampleFactor: 4,
      encoder: { inChannels: 3, attentionLevels: [2], midAttention: true, quantConv: false },
      decoder: { outChannels: 3, attentionLevels: [2], midAttention: true, postQuantConv: false },
      normGroups: 4,
      eps: 1e-6,
      scalingFactor: 0.18215,
      shiftFactor: 0,
    } satisfies VaeConfig);

    const image = randomValues(2 * 3 * 12 * 20, 7, 1);
    const z = randomValues(2 * 16 * 3 * 5, 8, 1);
    const results: Record<string, Record<string, Float32Array>> = {};
    for (const attention of ATTENTION_KINDS) {
      const enc = await open(buildVaeEncoder(config, w, { attention }));
      const dec = await open(buildVaeDecoder(config, w, { attention }));
      const e = await enc.run({ sample: { data: image, dims: [2, 3, 12, 20] } });
      const d = await dec.run({ latent_sample: { data: z, dims: [2, 16, 3, 5] } });
      await Promise.all([enc.release(), dec.release()]);
      expect(e.latent_sample.dims).toEqual([2, 16, 3, 5]);
      expect(e.latent_logvar.dims).toEqual([2, 16, 3, 5]);
      expect(d.sample.dims).toEqual([2, 3, 12, 20]);
      for (const t of [e.latent_sample, e.latent_logvar, d.sample]) expect(t.data.every(Number.isFinite)).toBe(true);
      results[attention] = { mean: e.latent_sample.data, logvar: e.latent_logvar.data, sample: d.sample.data };
    }
    // The level attention (over 3·5 = 15 tokens) and the mid attention agree between the two kinds.
    for (const k of ['mean', 'logvar', 'sample']) expectWithinTolerance(`contrib vs standard ${k}`, results.contrib[k], results.standard[k], 1e-5);
  });

  it('embed_dim ≠ z_channels: the latent is quant_conv\'s width; a decoder-only file gives a decoder and no encoder', async () => {
    const spec: LdmVaeSpec = { ch: 8, chMult: [1, 1], numResBlocks: 2, zChannels: 6, embedDim: 3, midAttention: false };
    // quant_conv's bias drives logvar channel 0 far above 20 and channel 1 far below −30: the graph clamps them.
    const bias = [0, 0, 0, 60, -60, 0];
    const fullWeights = await writtenWeights(ldmVaeTensors(spec).map((t) => (t.key === 'quant_conv.bias' ? { ...t, values: () => bias } : t)));
    const full = detectVaeConfig(fullWeights, { normGroups: 8 });
    expect(full).toMatchObject({ zChannels: 6, latentChannels: 3, downsampleFactor: 2, encoder: { quantConv: true, midAttention: false }, decoder: { postQuantConv: true, midAttention: false } });
    const enc = await open(buildVaeEncoder(full, fullWeights));
    const moments = await enc.run({ sample: { data: randomValues(3 * 8 * 6, 5, 1), dims: [1, 3, 8, 6] } });
    await enc.release();
    expect(moments.latent_logvar.dims).toEqual([1, 3, 4, 3]);
    const plane = 4 * 3;
    const logvar = Array.from(moments.latent_logvar.data);
    expect(logvar.slice(0, plane)).toEqual(new Array(plane).fill(20));
    expect(logvar.slice(plane, 2 * plane)).toEqual(new Array(plane).fill(-30));
    expect(logvar.slice(2 * plane).every((v) => v > -30 && v < 20)).toBe(true);

    const w = await writtenWeights(ldmVaeTensors({ ...spec, parts: ['decoder'], outCh: 4 }));
    const config = detectVaeConfig(w, { normGroups: 8, scalingFactor: 0.5, shiftFactor: 0.25 });
    expect(config.encoder).toBeUndefined();
    expect(config).toMatchObject({ ch: 8, chMult: [1, 1], numResBlocks: 2, zChannels: 6, latentChannels: 3, scalingFactor: 0.5, shiftFactor: 0.25, decoder: { outChannels: 4 } });
    expect(() => buildVaeEncoder(config, w)).toThrow(/has no encoder/);
    const dec = await open(buildVaeDecoder(config, w));
    const out = await dec.run({ latent_sample: { data: randomValues(3 * 4 * 4, 3, 1), dims: [1, 3, 4, 4] } });
    await dec.release();
    expect(out.sample.dims).toEqual([1, 4, 8, 8]);
  });

  it('refuses a missing tensor, naming it, at detection or build', async () => {
    const tensors = ldmVaeTensors({ ch: 8, chMult: [1, 2], numResBlocks: 1, zChannels: 4, embedDim: 4 });
    const without = (key: string) => writtenWeights(tensors.filter((t) => t.key !== key));

    const noConvOut = await without('encoder.conv_out.weight');
    expect(() => detectVaeConfig(noConvOut, { normGroups: 4 })).toThrow(MissingWeightError);
    expect(() => detectVaeConfig(noConvOut, { normGroups: 4 })).toThrow(/no tensor "encoder\.conv_out\.weight"/);

    const noConv2 = await without('decoder.up.1.block.1.conv2.weight');
    const config = detectVaeConfig(noConv2, { normGroups: 4 });
    expect(() => buildVaeDecoder(config, noConv2)).toThrow(/no tensor "decoder\.up\.1\.block\.1\.conv2\.weight"/);

    const noShortcut = await without('encoder.down.1.block.0.nin_shortcut.weight');
    expect(() => buildVaeEncoder(detectVaeConfig(noShortcut, { normGroups: 4 }), noShortcut)).toThrow(/no tensor "encoder\.down\.1\.block\.0\.nin_shortcut\.weight"/);

    const noDownsample = await without('encoder.down.0.downsample.conv.weight');
    expect(() => buildVaeEncoder(detectVaeConfig(noDownsample, { normGroups: 4 }), noDownsample)).toThrow(/no tensor "encoder\.down\.0\.downsample\.conv\.weight"/);

    const noAttnV = await without('decoder.mid.attn_1.v.bias');
    expect(() => buildVaeDecoder(detectVaeConfig(noAttnV, { normGroups: 4 }), noAttnV)).toThrow(/no tensor "decoder\.mid\.attn_1\.v\.bias"/);

    expect(() => detectVaeConfig(new WeightSet(new Map(), 'empty.safetensors'))).toThrow(/empty\.safetensors: not an LDM AutoencoderKL: no encoder\.\* or decoder\.\* tensors/);
  });

  it('refuses inconsistent shapes with the tensors and numbers that disagree', async () => {
    const base: LdmVaeSpec = { ch: 8, chMult: [1, 2], numResBlocks: 1, zChannels: 4, embedDim: 4 };
    const encoder = ldmVaeTensors({ ...base, parts: ['encoder'] });
    const pair = (decoderSpec: Partial<LdmVaeSpec>) => writtenWeights([...encoder, ...ldmVaeTensors({ ...base, ...decoderSpec, parts: ['decoder'] })]);

    await expect(pair({ chMult: [1, 3] }).then((w) => detectVaeConfig(w, { normGroups: 4 }))).rejects.toThrow(
      /encoder level widths \[8, 16\] differ from decoder level widths \[8, 24\]/,
    );
    await expect(pair({ chMult: [1, 2, 2] }).then((w) => detectVaeConfig(w, { normGroups: 4 }))).rejects.toThrow(/the encoder has 2 levels \(encoder\.down\.\*\), the decoder 3/);
    await expect(pair({ numResBlocks: 2 }).then((w) => detectVaeConfig(w, { normGroups: 4 }))).rejects.toThrow(/decoder levels need 2, but decoder\.up\.0 has 3/);
    await expect(pair({ zChannels: 8, embedDim: 4 }).then((w) => detectVaeConfig(w, { normGroups: 4 }))).rejects.toThrow(/encoder\.conv_out gives z = 4 channels \(2z = 8\), decoder\.conv_in reads 8/);
    await expect(pair({ embedDim: 2 }).then((w) => detectVaeConfig(w, { normGroups: 4 }))).rejects.toThrow(/the encoder gives 4-channel latents \(quant_conv\), the decoder reads 2 \(post_quant_conv\)/);

    // A tensor whose shape contradicts the rest: detection passes, the builder names it with both shapes.
    const tensors = ldmVaeTensors(base).map((t) => (t.key === 'decoder.up.1.block.1.conv1.weight' ? { ...t, shape: [16, 16, 1, 1], values: () => new Float32Array(256) } : t));
    const w = await writtenWeights(tensors);
    const config = detectVaeConfig(w, { normGroups: 4 });
    expect(() => buildVaeDecoder(config, w)).toThrow(WeightShapeError);
    expect(() => buildVaeDecoder(config, w)).toThrow(/"decoder\.up\.1\.block\.1\.conv1\.weight" has shape \[16, 16, 1, 1\], the architecture needs \[16, 16, 3, 3\]/);

    // An odd encoder output cannot be split into mean and logvar.
    const odd = await writtenWeights(ldmVaeTensors({ ...base, zChannels: 4, embedDim: undefined, parts: ['encoder'] }).map((t) =>
      t.key === 'encoder.conv_out.weight' ? { ...t, shape: [7, 16, 3, 3], values: () => new Float32Array(7 * 16 * 9) } : t.key === 'encoder.conv_out.bias' ? { ...t, shape: [7], values: () => new Float32Array(7) } : t,
    ));
    expect(() => detectVaeConfig(odd, { normGroups: 4 })).toThrow(VaeConfigError);
    expect(() => detectVaeConfig(odd, { normGroups: 4 })).toThrow(/encoder\.conv_out gives 7 channels; AutoencoderKL needs 2·z/);

    // Hints the tensors contradict.
    const ok = await writtenWeights(ldmVaeTensors(base));
    expect(() => detectVaeConfig(ok)).toThrow(/GroupNorm groups 32 \(hint\) do not divide the width 8/);
    expect(() => detectVaeConfig(ok, { normGroups: 0 })).toThrow(/GroupNorm groups hint must be a positive integer/);
  });
});
