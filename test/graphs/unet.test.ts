/**
 * The UNet graph builder and its config detection against upstream: the tiny SD 1.x / 2.x / SDXL checkpoints'
 * reference outputs (diffusers UNet2DConditionModel, float32), both attention kinds, and detection on other
 * configurations written here with writeSafetensors.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectUnetConfig, UnetHintError, unetHintsFromDiffusersConfig, unetHintsFromLdmParams, type UnetConfig, type UnetHints } from '../../gpu-service/src/checkpoints/detect/unet-config';
import type { AttentionKind } from '../../gpu-service/src/graphs/layers';
import { buildUnetGraph, UNET_IO } from '../../gpu-service/src/graphs/unet';
import { timestepFrequencies } from '../../gpu-service/src/graphs/unet/time-embedding';
import { OnnxModel, type Feed } from '../../gpu-service/src/onnx/session';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { writeSafetensors, type TensorToWrite } from '../../gpu-service/src/weights/safetensors-writer';
import type { TensorFile } from '../../gpu-service/src/weights/tensor-file';
import { MissingWeightError, WeightSet, WeightShapeError } from '../../gpu-service/src/weights/weight-set';
import { ldmUnetTensors, type LdmUnetSpec } from '../helpers/ldm-unet-checkpoint';
import { expectWithinTolerance, hasFixture, normwiseRelError, openFixtureFamily, type FixtureCase, type FixtureFamily } from '../helpers/checkpoint-fixtures';

let dir: string;
const opened: TensorFile[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'unet-graph-'));
});
afterAll(async () => {
  await Promise.all(opened.map((f) => f.close()));
  await rm(dir, { recursive: true, force: true });
});

async function unetWeights(file: string): Promise<WeightSet> {
  const f = await openSafetensors(file);
  opened.push(f);
  return WeightSet.fromFile(f, 'model.diffusion_model.');
}

let graphCount = 0;
/** Build, save and open the graph of `config`. */
async function session(config: UnetConfig, weights: WeightSet, attention: AttentionKind): Promise<OnnxModel> {
  const g = buildUnetGraph(config, weights, { attention });
  const out = path.join(dir, `g${graphCount++}`);
  const { modelPath } = await g.save(out);
  return OnnxModel.open(modelPath);
}

async function runUnet(model: OnnxModel, feeds: Record<string, Feed>): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const out = await model.run(feeds, [UNET_IO.outSample]);
  return out[UNET_IO.outSample];
}

/** Open a fixture family whose reference file is closed with the weights files. */
async function fixtureFamily(rel: string): Promise<FixtureFamily> {
  const family = await openFixtureFamily(rel);
  opened.push(family.reference);
  return family;
}

async function feed(family: FixtureFamily, name: string): Promise<Feed> {
  const t = await family.tensor(name);
  return { data: t.data, dims: t.shape };
}

/** The SDXL cases' absolute bound (their `tolerance.atol`; the SD 1.x/2.x cases give `rel`). */
function atolOf(c: FixtureCase): number {
  return (c.tolerance as unknown as { atol: number }).atol;
}

/** max|a − e| (the SDXL fixtures' absolute pass rule). */
function maxAbsError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < expected.length; i++) m = Math.max(m, Math.abs(actual[i] - expected[i]));
  return m;
}

const worst: Record<string, string> = {};
afterAll(() => {
  if (Object.keys(worst).length) console.log('UNet fixture errors:', worst);
});

describe('timestep embedding', () => {
  it('uses float32 frequencies exp(−ln(10000)·k/half) with f_0 = 1', () => {
    const f = timestepFrequencies(160);
    expect(f[0]).toBe(1);
    expect(f[80]).toBeCloseTo(Math.exp(-Math.log(10000) / 2), 6);
    expect(f[159]).toBeCloseTo(Math.exp((-Math.log(10000) * 159) / 160), 7);
  });
});

describe.skipIf(!hasFixture('checkpoints'))('SD 1.x / 2.x UNet against diffusers', () => {
  const cases: Array<{ family: string; file: string; ids: string[]; hints: (ldm: Record<string, unknown>) => UnetHints; attention: AttentionKind[] }> = [
    {
      family: 'checkpoints/sd15-tiny',
      file: 'sd15-tiny.safetensors',
      ids: ['sd15.unet.sq', 'sd15.unet.nonsq'],
      // LDM num_heads: a head count for every level.
      hints: (ldm) => ({ attentionHeads: { heads: ldm.num_heads as number }, groupNormGroups: ldm.norm_num_groups as number }),
      attention: ['contrib', 'standard'],
    },
    {
      family: 'checkpoints/sd2-tiny',
      file: 'sd2-tiny.safetensors',
      ids: ['sd2.unet.sq', 'sd2.unet.nonsq'],
      // LDM num_head_channels: a fixed head width.
      hints: (ldm) => ({ attentionHeads: { headDim: ldm.num_head_channels as number }, groupNormGroups: ldm.norm_num_groups as number }),
      // The standard kind with per-level head counts is covered by the SDXL base case.
      attention: ['contrib'],
    },
  ];

  for (const c of cases) {
    it(`${c.family}: detects the config and matches every UNet case with ${c.attention.join(' and ')} attention`, async () => {
      const family = await fixtureFamily(c.family);
      const configs = family.json.configs as Record<string, Record<string, unknown>>;
      const ldm = configs.unet_ldm_equivalent;
      const weights = await unetWeights(path.join(family.dir, c.file));
      const config = detectUnetConfig(weights, c.hints(ldm));

      expect(config.modelChannels).toBe(ldm.model_channels);
      expect(config.levels.map((l) => l.channelMult)).toEqual(ldm.channel_mult);
      expect(config.levels.map((l) => l.numResBlocks)).toEqual((ldm.channel_mult as number[]).map(() => ldm.num_res_blocks));
      expect(config.contextDim).toBe(ldm.context_dim);
      expect(config.useLinearInTransformer).toBe(ldm.use_linear_in_transformer);
      expect([config.inChannels, config.outChannels]).toEqual([ldm.in_channels, ldm.out_channels]);
      for (const a of ldm.attention_levels as Array<{ level: number; heads: number }>) expect(config.levels[a.level].heads).toBe(a.heads);
      expect(config.middle?.heads).toBe((ldm.mid_block_attention as { heads: number }).heads);
      expect(config.adm).toBeNull();

      for (const attention of c.attention) {
        const model = await session(config, weights, attention);
        try {
          for (const id of c.ids) {
            const fc = family.case(id);
            const out = await runUnet(model, {
              [UNET_IO.sample]: await feed(family, fc.inputs.sample),
              [UNET_IO.timestep]: await feed(family, fc.inputs.timestep),
              [UNET_IO.encoderHiddenStates]: await feed(family, fc.inputs.encoder_hidden_states),
            });
            const expected = await family.tensor(fc.outputs.out);
            expect(out.dims).toEqual(expected.shape);
            worst[`${id} (${attention})`] = normwiseRelError(out.data, expected.data).toExponential(2) + ' rel';
            expectWithinTolerance(`${id} (${attention})`, out.data, expected.data, fc.tolerance.rel);
          }
        } finally {
          await model.release();
        }
      }
    });
  }

  it('sd2-tiny: the diffusers config (head counts per level, [2, 4]) gives the same config as the LDM head width', async () => {
    const family = await fixtureFamily('checkpoints/sd2-tiny');
    const configs = family.json.configs as Record<string, Record<string, unknown>>;
    const weights = await unetWeights(path.join(family.dir, 'sd2-tiny.safetensors'));
    const fromDiffusers = unetHintsFromDiffusersConfig(configs.unet);
    expect(fromDiffusers).toEqual({ attentionHeads: { heads: [2, 4] }, groupNormGroups: 16, normEps: 1e-5 });
    const fromLdm = { ...unetHintsFromLdmParams({ num_heads: -1, num_head_channels: configs.unet_ldm_equivalent.num_head_channels as number }), groupNormGroups: 16 };
    expect(fromLdm.attentionHeads).toEqual({ headDim: 16 });
    expect(detectUnetConfig(weights, fromDiffusers)).toEqual(detectUnetConfig(weights, fromLdm));
  });

  it('hints from LDM yaml params: num_head_channels wins over num_heads, one of them is required', () => {
    expect(unetHintsFromLdmParams({ num_heads: 8 })).toEqual({ attentionHeads: { heads: 8 }, groupNormGroups: 32 });
    expect(unetHintsFromLdmParams({ num_heads: -1, num_head_channels: 64 })).toEqual({ attentionHeads: { headDim: 64 }, groupNormGroups: 32 });
    expect(() => unetHintsFromLdmParams({})).toThrow(/neither num_heads nor num_head_channels/);
    expect(() => unetHintsFromDiffusersConfig({ attention_head_dim: 'eight' })).toThrow(/attention_head_dim must be a positive number/);
  });
});

describe.skipIf(!hasFixture('checkpoints-xl'))('SDXL base and refiner UNets against diffusers', () => {
  type XlModel = { unet: Record<string, unknown>; files: { single_file: { path: string } } };
  // diffusers' attention_head_dim: head counts per level.
  const hintsOf = (unet: Record<string, unknown>): UnetHints => unetHintsFromDiffusersConfig(unet);

  it('base: detects levels without attention, per-level depth [1, 2, 1] and label_emb, matches sdxl.unet.* with both attention kinds', async () => {
    const family = await fixtureFamily('checkpoints-xl');
    const models = family.json.models as Record<string, XlModel>;
    const base = models['sdxl-base'];
    const weights = await unetWeights(path.join(family.dir, base.files.single_file.path));
    const config = detectUnetConfig(weights, hintsOf(base.unet));
    const depths = base.unet.transformer_layers_per_block as number[];
    const attnLevels = (base.unet.down_block_types as string[]).map((t) => t.startsWith('CrossAttn'));
    expect(config.levels.map((l) => l.channels)).toEqual(base.unet.block_out_channels);
    expect(config.levels.map((l) => l.transformerDepth)).toEqual(depths.map((d, i) => new Array(base.unet.layers_per_block as number).fill(attnLevels[i] ? d : 0)));
    expect(config.levels.map((l) => l.transformerDepthOutput)).toEqual(depths.map((d, i) => new Array((base.unet.layers_per_block as number) + 1).fill(attnLevels[i] ? d : 0)));
    expect(config.middle).toEqual({ transformerDepth: depths[depths.length - 1], heads: (base.unet.attention_head_dim as number[]).at(-1) });
    expect(config.contextDim).toBe(base.unet.cross_attention_dim);
    expect(config.useLinearInTransformer).toBe(true);
    expect(config.adm).toEqual({ inChannels: base.unet.projection_class_embeddings_input_dim, timeIdEmbedDim: base.unet.addition_time_embed_dim });

    for (const attention of ['contrib', 'standard'] as const) {
      const model = await session(config, weights, attention);
      try {
        for (const id of ['sdxl.unet.square', 'sdxl.unet.nonsquare']) {
          const fc = family.case(id);
          const out = await runUnet(model, {
            [UNET_IO.sample]: await feed(family, fc.inputs.sample),
            [UNET_IO.timestep]: await feed(family, fc.inputs.timestep),
            [UNET_IO.encoderHiddenStates]: await feed(family, fc.inputs.encoder_hidden_states),
            [UNET_IO.textEmbeds]: await feed(family, fc.inputs.text_embeds),
            [UNET_IO.timeIds]: await feed(family, fc.inputs.time_ids),
          });
          const expected = await family.tensor(fc.outputs.eps);
          expect(out.dims).toEqual(expected.shape);
          const err = maxAbsError(out.data, expected.data);
          worst[`${id} (${attention})`] = `${err.toExponential(2)} abs, ${normwiseRelError(out.data, expected.data).toExponential(2)} rel`;
          expect(err, `${id} (${attention}): max abs error`).toBeLessThanOrEqual(atolOf(fc));
        }
      } finally {
        await model.release();
      }
    }
  });

  it('refiner: 4 levels, 5 time ids with the aesthetic score, matches the base_refiner case’s refiner UNet calls', async () => {
    const family = await fixtureFamily('checkpoints-xl');
    const models = family.json.models as Record<string, XlModel>;
    const refiner = models['sdxl-refiner'];
    const weights = await unetWeights(path.join(family.dir, refiner.files.single_file.path));
    const config = detectUnetConfig(weights, hintsOf(refiner.unet));
    expect(config.levels.map((l) => l.channels)).toEqual(refiner.unet.block_out_channels);
    expect(config.levels.map((l) => l.heads)).toEqual((refiner.unet.down_block_types as string[]).map((t, i) => (t.startsWith('CrossAttn') ? (refiner.unet.attention_head_dim as number[])[i] : 0)));
    expect(config.contextDim).toBe(refiner.unet.cross_attention_dim);
    expect(config.adm?.inChannels).toBe(refiner.unet.projection_class_embeddings_input_dim);

    const fc = family.case('sdxl.base_refiner');
    const steps = fc.refiner_steps as { timesteps: number[] };
    const inter = fc.intermediates as Record<string, string>;
    // The UNet calls of the refiner half: batch [uncond, cond]; raw UNet output, before guidance. The case's
    // own tolerance is for its latents; the UNet-only cases' bound (3e-5) is the one that fits these.
    const atol = atolOf(family.case('sdxl.unet.square'));
    const model = await session(config, weights, 'contrib');
    try {
      for (const [i, t] of steps.timesteps.entries()) {
        const sample = await feed(family, inter[`refiner.step${i}.unet_sample`]);
        const out = await runUnet(model, {
          [UNET_IO.sample]: sample,
          [UNET_IO.timestep]: { data: [t, t], dims: [2] },
          [UNET_IO.encoderHiddenStates]: await feed(family, inter.encoder_hidden_states),
          [UNET_IO.textEmbeds]: await feed(family, inter.text_embeds),
          [UNET_IO.timeIds]: await feed(family, inter.time_ids),
        });
        const expected = await family.tensor(inter[`refiner.step${i}.unet_eps`]);
        const err = maxAbsError(out.data, expected.data);
        worst[`sdxl.base_refiner refiner.step${i}`] = `${err.toExponential(2)} abs, ${normwiseRelError(out.data, expected.data).toExponential(2)} rel`;
        expect(err, `refiner step ${i}: max abs error`).toBeLessThanOrEqual(atol);
      }
    } finally {
      await model.release();
    }
  });
});

describe('UNet detection on other configurations', () => {
  /** Write `tensors` and open them as a UNet WeightSet. */
  async function written(name: string, tensors: TensorToWrite[]): Promise<WeightSet> {
    const file = path.join(dir, `${name}.safetensors`);
    await writeSafetensors(file, tensors);
    return unetWeights(file);
  }

  // Inpainting-style (9 input channels), 3 levels with multipliers [1, 2, 3], one res block per level, no
  // attention at the top level, depth 2 / 1 below, a depth-2 middle transformer, conv projections.
  const inpaintSpec: LdmUnetSpec = {
    inChannels: 9,
    outChannels: 4,
    modelChannels: 16,
    channelMult: [1, 2, 3],
    numResBlocks: 1,
    transformerDepth: [0, 2, 1],
    transformerDepthMiddle: 2,
    contextDim: 24,
    useLinear: false,
  };
  const inpaintHints: UnetHints = { attentionHeads: { heads: [1, 2, 3] }, groupNormGroups: 8 };

  it('3 levels, 9 input channels, per-level depths: detected config, and a graph whose output keeps odd sizes', async () => {
    const weights = await written('inpaint', ldmUnetTensors(inpaintSpec));
    const config = detectUnetConfig(weights, inpaintHints);
    expect(config).toEqual({
      inChannels: 9,
      outChannels: 4,
      modelChannels: 16,
      timestepEmbedDim: 16,
      timeEmbedDim: 64,
      levels: [
        { channels: 16, channelMult: 1, numResBlocks: 1, transformerDepth: [0], transformerDepthOutput: [0, 0], heads: 0 },
        { channels: 32, channelMult: 2, numResBlocks: 1, transformerDepth: [2], transformerDepthOutput: [2, 2], heads: 2 },
        { channels: 48, channelMult: 3, numResBlocks: 1, transformerDepth: [1], transformerDepthOutput: [1, 1], heads: 3 },
      ],
      middle: { transformerDepth: 2, heads: 3 },
      contextDim: 24,
      useLinearInTransformer: false,
      adm: null,
      groupNormGroups: 8,
      normEps: 1e-5,
      transformerNormEps: 1e-6,
      layerNormEps: 1e-5,
    } satisfies UnetConfig);

    // 12×10 latents: 10 → 5 → 3 on the way down, so the up path must upsample 3 → 5 (the skip's size), not 6.
    const [B, H, W, T] = [2, 12, 10, 7];
    const sample = Float32Array.from({ length: B * 9 * H * W }, (_, i) => Math.sin(i * 0.37));
    const ehs = Float32Array.from({ length: B * T * 24 }, (_, i) => Math.cos(i * 0.11));
    const feeds = {
      [UNET_IO.sample]: { data: sample, dims: [B, 9, H, W] },
      [UNET_IO.timestep]: { data: [981, 3.5], dims: [B] },
      [UNET_IO.encoderHiddenStates]: { data: ehs, dims: [B, T, 24] },
    };
    const outs: Float32Array[] = [];
    for (const attention of ['contrib', 'standard'] as const) {
      const model = await session(config, weights, attention);
      try {
        expect(model.inputs.map((i) => i.name)).toEqual([UNET_IO.sample, UNET_IO.timestep, UNET_IO.encoderHiddenStates]);
        const out = await runUnet(model, feeds);
        expect(out.dims).toEqual([B, 4, H, W]);
        expect(out.data.every(Number.isFinite)).toBe(true);
        outs.push(out.data);
      } finally {
        await model.release();
      }
    }
    expect(normwiseRelError(outs[0], outs[1])).toBeLessThan(1e-5);
  });

  it('SDXL-style: label_emb width, linear projections, head width; text_embeds and time_ids reach the output', async () => {
    const [pooled, ids, d] = [12, 3, 4];
    const spec: LdmUnetSpec = {
      inChannels: 4,
      outChannels: 4,
      modelChannels: 16,
      channelMult: [1, 2],
      numResBlocks: 2,
      transformerDepth: [0, 3],
      transformerDepthMiddle: 1,
      contextDim: 20,
      useLinear: true,
      admInChannels: pooled + ids * d,
    };
    const weights = await written('xl-style', ldmUnetTensors(spec));
    const config = detectUnetConfig(weights, { attentionHeads: { headDim: 8 }, groupNormGroups: 4, additionTimeEmbedDim: d });
    expect(config.levels.map((l) => [l.channels, l.numResBlocks, l.transformerDepth, l.transformerDepthOutput, l.heads])).toEqual([
      [16, 2, [0, 0], [0, 0, 0], 0],
      [32, 2, [3, 3], [3, 3, 3], 4],
    ]);
    expect(config.middle).toEqual({ transformerDepth: 1, heads: 4 });
    expect(config.adm).toEqual({ inChannels: pooled + ids * d, timeIdEmbedDim: d });
    expect(config.useLinearInTransformer).toBe(true);

    const model = await session(config, weights, 'contrib');
    try {
      const base = {
        [UNET_IO.sample]: { data: Float32Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i)), dims: [1, 4, 8, 8] },
        [UNET_IO.timestep]: { data: [500], dims: [1] },
        [UNET_IO.encoderHiddenStates]: { data: Float32Array.from({ length: 5 * 20 }, (_, i) => Math.cos(i)), dims: [1, 5, 20] },
        [UNET_IO.textEmbeds]: { data: Float32Array.from({ length: pooled }, (_, i) => i / pooled), dims: [1, pooled] },
        [UNET_IO.timeIds]: { data: [64, 64, 0], dims: [1, ids] },
      };
      const a = await runUnet(model, base);
      expect(a.dims).toEqual([1, 4, 8, 8]);
      const b = await runUnet(model, { ...base, [UNET_IO.timeIds]: { data: [64, 64, 8], dims: [1, ids] } });
      const c = await runUnet(model, { ...base, [UNET_IO.textEmbeds]: { data: new Float32Array(pooled), dims: [1, pooled] } });
      expect(normwiseRelError(b.data, a.data)).toBeGreaterThan(1e-4);
      expect(normwiseRelError(c.data, a.data)).toBeGreaterThan(1e-4);
    } finally {
      await model.release();
    }
  });

  it('a missing tensor is a MissingWeightError naming it; an unused one (another architecture) is refused', async () => {
    const missing = 'model.diffusion_model.input_blocks.3.1.transformer_blocks.1.attn2.to_v.weight';
    const weights = await written('missing', ldmUnetTensors(inpaintSpec).filter((t) => t.key !== missing));
    const config = detectUnetConfig(weights, inpaintHints);
    expect(() => buildUnetGraph(config, weights)).toThrow(MissingWeightError);
    expect(() => buildUnetGraph(config, weights)).toThrow(/input_blocks\.3\.1\.transformer_blocks\.1\.attn2\.to_v\.weight/);
    const extra = await written('extra', [...ldmUnetTensors(inpaintSpec), { key: 'model.diffusion_model.input_blocks.1.0.time_stack.in_layers.2.weight', dtype: 'F32', shape: [16, 16, 3, 1, 1], values: () => new Float32Array(768) }]);
    expect(() => buildUnetGraph(detectUnetConfig(extra, inpaintHints), extra)).toThrow(/1 tensor\(s\) the detected UNet architecture does not use \(input_blocks\.1\.0\.time_stack\.in_layers\.2\.weight\)/);
    const noUnet = await written('no-unet', ldmUnetTensors(inpaintSpec).filter((t) => !t.key.includes('input_blocks.0.0.')));
    expect(() => detectUnetConfig(noUnet, inpaintHints)).toThrow(/has no tensor "input_blocks\.0\.0\.weight"/);
  });

  it('inconsistent shapes are WeightShapeErrors naming the tensor and both shapes', async () => {
    const reshaped = (key: string, shape: number[]) =>
      ldmUnetTensors(inpaintSpec).map((t) => (t.key === `model.diffusion_model.${key}` ? { ...t, shape, values: () => new Float32Array(shape.reduce((a, b) => a * b, 1)) } : t));
    // The middle transformer cross-attends to another width than the others: caught by detection.
    const ctx = await written('ctx', reshaped('middle_block.1.transformer_blocks.0.attn2.to_k.weight', [48, 30]));
    expect(() => detectUnetConfig(ctx, inpaintHints)).toThrow(WeightShapeError);
    expect(() => detectUnetConfig(ctx, inpaintHints)).toThrow(/middle_block\.1\.transformer_blocks\.0\.attn2\.to_k\.weight" has shape \[48, 30\], the architecture needs \[-1, 24\]/);
    // An output res block whose input width ignores the skip it concatenates (48 + 32): caught by the builder.
    const skip = await written('skip', reshaped('output_blocks.1.0.in_layers.2.weight', [48, 48, 3, 3]));
    const config = detectUnetConfig(skip, inpaintHints);
    expect(() => buildUnetGraph(config, skip)).toThrow(/output_blocks\.1\.0\.in_layers\.2\.weight" has shape \[48, 48, 3, 3\], the architecture needs \[48, 80, 3, 3\]/);
  });

  it('output blocks that do not mirror the input path, and hints that do not fit, are refused with the reason', async () => {
    const truncated = await written('truncated', ldmUnetTensors(inpaintSpec).filter((t) => !t.key.includes('output_blocks.5.')));
    expect(() => detectUnetConfig(truncated, inpaintHints)).toThrow(/5 output blocks, but an input path of 1\+1\+1 res blocks over 3 levels needs 6/);
    const weights = await written('hints', ldmUnetTensors(inpaintSpec));
    expect(() => detectUnetConfig(weights, { attentionHeads: { heads: [2, 2] } })).toThrow(UnetHintError);
    expect(() => detectUnetConfig(weights, { ...inpaintHints, attentionHeads: { heads: [2, 2] } })).toThrow(/has 2 entries, the UNet has 3 levels/);
    expect(() => detectUnetConfig(weights, { ...inpaintHints, attentionHeads: { headDim: 20 } })).toThrow(/head width 20 does not divide level 1's 32 channels/);
    expect(() => detectUnetConfig(weights, { ...inpaintHints, attentionHeads: { heads: 5 } })).toThrow(/5 attention heads do not split level 1's 32 channels/);
    expect(() => detectUnetConfig(weights, { ...inpaintHints, groupNormGroups: 32 })).toThrow(/groupNormGroups 32 does not divide the UNet's 16 channels/);
  });
});
