/**
 * The FLUX.1 transformer: config detection, the graph builder and the diffusers → BFL key map against upstream
 * (the tiny FLUX.1-schnell fixture's FluxTransformer2DModel outputs, float32, from the BFL single file and from the
 * diffusers folder, both attention kinds), the RoPE tables against float64, detection on another configuration
 * written here (guidance embedding, other widths and counts), and the errors for broken files.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  detectFluxConfig,
  FluxHintError,
  fluxHintsFromDiffusersConfig,
  fluxTensorShapes,
  type FluxConfig,
  type FluxHints,
} from '../../gpu-service/src/checkpoints/detect/flux-config';
import { diffusersFluxWeights } from '../../gpu-service/src/checkpoints/key-maps/diffusers-flux';
import { ropeFrequencies, ropeTables, splitFrequency } from '../../gpu-service/src/graphs/flux/rope';
import { buildFluxTransformerGraph, FLUX_TRANSFORMER_IO as IO, type FluxTransformerGraphOptions } from '../../gpu-service/src/graphs/flux-transformer';
import { Layers, type AttentionKind } from '../../gpu-service/src/graphs/layers';
import { DataType, OnnxGraph } from '../../gpu-service/src/graphs/onnx-graph';
import { OnnxModel, type Feed } from '../../gpu-service/src/onnx/session';
import { openGguf } from '../../gpu-service/src/weights/gguf';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { writeSafetensors, type TensorToWrite } from '../../gpu-service/src/weights/safetensors-writer';
import type { TensorFile } from '../../gpu-service/src/weights/tensor-file';
import { MissingWeightError, WeightSet, WeightShapeError } from '../../gpu-service/src/weights/weight-set';
import { createMulberry32 } from '../../scripts/tiny-model/prng';
import { expectWithinAtol, hasFixture, maxAbsError, normwiseRelError, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';

let dir: string;
const opened: TensorFile[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'flux-graph-'));
});
afterAll(async () => {
  await Promise.all(opened.map((f) => f.close()));
  await rm(dir, { recursive: true, force: true });
});

async function open(file: string): Promise<TensorFile> {
  const f = await openSafetensors(file);
  opened.push(f);
  return f;
}

let graphCount = 0;
/** Build, save and open the graph. */
async function session(config: FluxConfig, weights: WeightSet, opts: FluxTransformerGraphOptions): Promise<OnnxModel> {
  const { modelPath } = await buildFluxTransformerGraph(config, weights, opts).save(path.join(dir, `g${graphCount++}`));
  return OnnxModel.open(modelPath);
}

async function run(model: OnnxModel, feeds: Record<string, Feed>): Promise<{ data: Float32Array; dims: readonly number[] }> {
  return (await model.run(feeds, [IO.outSample]))[IO.outSample];
}

const worst: Record<string, string> = {};
afterAll(() => {
  if (Object.keys(worst).length) console.log('FLUX transformer errors (max abs):', worst);
});

describe('RoPE tables', () => {
  it('split frequencies: a 12-bit head whose products with integer ids below 4096 are exact in float32, plus a tail', () => {
    const { omega } = ropeFrequencies([16, 56, 56], 10000);
    for (const w of omega) {
      const { head, tail } = splitFrequency(w);
      expect(Math.abs(head + tail - w)).toBeLessThanOrEqual(w * 2 ** -35);
      for (const pos of [1, 63, 127, 4095]) expect(Math.fround(pos * head)).toBe(pos * head);
    }
  });

  it('match float64 cos/sin rounded to float32 (upstream) for ids up to 4095, within 2.5e-7', async () => {
    const axesDim = [16, 56, 56];
    const g = new OnnxGraph('rope', 'float32');
    const layers = new Layers(g, new WeightSet(new Map(), 'none'));
    const ids = g.input('ids', DataType.FLOAT, ['tokens', 3]);
    const t = ropeTables(layers, ids, axesDim, 10000);
    g.output('cos', t.cos, DataType.FLOAT, [1, 'tokens', 1, 64, 1]);
    g.output('sin', t.sin, DataType.FLOAT, [1, 'tokens', 1, 64, 1]);
    const { modelPath } = await g.save(path.join(dir, 'rope'));
    const model = await OnnxModel.open(modelPath);
    try {
      const positions = [0, 1, 2, 17, 63, 64, 127, 255, 1000, 4095];
      const idData = positions.flatMap((p, i) => [i % 3 === 0 ? 0 : p, p, 4095 - p]);
      const out = await model.run({ ids: { data: idData, dims: [positions.length, 3] } });
      const { axis, omega } = ropeFrequencies(axesDim, 10000);
      let err = 0;
      positions.forEach((_, s) => {
        axis.forEach((a, p) => {
          const angle = idData[s * 3 + a] * omega[p];
          err = Math.max(err, Math.abs(out.cos.data[s * 64 + p] - Math.fround(Math.cos(angle))), Math.abs(out.sin.data[s * 64 + p] - Math.fround(Math.sin(angle))));
        });
      });
      worst['rope tables vs float64'] = err.toExponential(2);
      expect(err).toBeLessThanOrEqual(2.5e-7);
    } finally {
      await model.release();
    }
  });
});

describe.skipIf(!hasFixture('checkpoints-dit'))('FLUX.1-schnell transformer against diffusers', () => {
  const CASES = ['flux.transformer.square', 'flux.transformer.nonsquare'];
  let family: FixtureFamily;
  let diffusersConfig: Record<string, unknown>;
  let bfl: WeightSet;
  let fromDiffusers: WeightSet;
  let hints: FluxHints;

  beforeAll(async () => {
    family = await openFixtureFamily('checkpoints-dit/flux-schnell');
    opened.push(family.reference);
    diffusersConfig = (family.json.models as Record<string, { transformer: Record<string, unknown> }>)['flux-schnell'].transformer;
    hints = fluxHintsFromDiffusersConfig(diffusersConfig);
    bfl = WeightSet.fromFile(await open(path.join(family.dir, 'flux1-schnell-tiny.safetensors')));
    fromDiffusers = diffusersFluxWeights(WeightSet.fromFile(await open(path.join(family.dir, 'diffusers/transformer/diffusion_pytorch_model.safetensors'))));
  });

  const feeds = async (id: string): Promise<Record<string, Feed>> => {
    const c = family.case(id);
    const out: Record<string, Feed> = {};
    for (const [name, tensor] of Object.entries(c.inputs)) {
      const t = await family.tensor(tensor);
      out[name] = { data: t.data, dims: t.shape };
    }
    return out;
  };

  const expectCases = async (model: OnnxModel, label: string) => {
    for (const id of CASES) {
      const c = family.case(id);
      const out = await run(model, await feeds(id));
      const expected = await family.tensor(c.outputs.output);
      expect(out.dims).toEqual(expected.shape);
      worst[`${id} ${label}`] = maxAbsError(out.data, expected.data).toExponential(2);
      expectWithinAtol(`${id} ${label}`, out.data, expected.data, c.tolerance.atol!);
    }
  };

  it('detects the diffusers config from the BFL tensors (head width from the QK-norm scales)', () => {
    const config = detectFluxConfig(bfl, hints);
    const d = diffusersConfig;
    expect(config.depth).toBe(d.num_layers);
    expect(config.depthSingleBlocks).toBe(d.num_single_layers);
    expect(config.heads).toBe(d.num_attention_heads);
    expect(config.headDim).toBe(d.attention_head_dim);
    expect(config.hiddenSize).toBe((d.num_attention_heads as number) * (d.attention_head_dim as number));
    expect(config.inChannels).toBe(d.in_channels);
    expect(config.outChannels).toBe(d.out_channels ?? d.in_channels);
    expect(config.contextDim).toBe(d.joint_attention_dim);
    expect(config.pooledDim).toBe(d.pooled_projection_dim);
    expect(config.guidanceEmbed).toBe(d.guidance_embeds);
    expect(config.axesDim).toEqual(d.axes_dims_rope);
    expect([config.mlpRatio, config.timestepEmbedDim, config.theta, config.qkvBias]).toEqual([4, 256, 10000, true]);
    // The head count is read from the tensors: the hints only confirm it.
    expect(detectFluxConfig(bfl, { axesDimsRope: hints.axesDimsRope })).toEqual(config);
  });

  for (const attention of ['contrib', 'standard'] as const) {
    it(`BFL single file (bf16): square and non-square cases within atol, ${attention} attention`, async () => {
      const model = await session(detectFluxConfig(bfl, hints), bfl, { attention });
      try {
        await expectCases(model, `bfl ${attention}`);
      } finally {
        await model.release();
      }
    });
  }

  it('the diffusers folder through the key map: every BFL tensor bit-identical (fused qkv, linear1, swapped adaLN halves)', async () => {
    expect(fromDiffusers.names().sort()).toEqual(bfl.names().sort());
    for (const name of bfl.names()) {
      expect(fromDiffusers.shape(name), name).toEqual(bfl.shape(name));
      const [a, b] = [await fromDiffusers.read(name), await bfl.read(name)];
      expect(a.every((v, i) => Object.is(v, b[i])), `${name} differs`).toBe(true);
    }
  });

  it('the key map keeps keys it does not know under their diffusers names, so detection refuses them by name', async () => {
    const extra = await writeModel('ip-adapter-part.safetensors', randomTensors(new Map([['encoder_hid_proj.weight', [32, 16]]]), 6));
    const diffusers = WeightSet.fromFile(await open(path.join(family.dir, 'diffusers/transformer/diffusion_pytorch_model.safetensors')));
    expect(() => detectFluxConfig(diffusersFluxWeights(diffusers.merge(extra)), hints)).toThrow(/does not have \(encoder_hid_proj\.weight\)/);
  });

  it('the diffusers folder through the key map: both cases within atol', async () => {
    const config = detectFluxConfig(fromDiffusers, hints);
    expect(config).toEqual(detectFluxConfig(bfl, hints));
    const model = await session(config, fromDiffusers, { attention: 'contrib' });
    try {
      await expectCases(model, 'diffusers contrib');
    } finally {
      await model.release();
    }
  });

  it("flux.txt2img's four transformer calls (σ = 1, 0.75, 0.5, 0.25), each fed the reference's latents, within atol", async () => {
    const c = family.case('flux.txt2img');
    const sigmas = c.transformer_timestep_inputs as number[];
    const inter = c.intermediates as Record<string, string>;
    const model = await session(detectFluxConfig(bfl, hints), bfl, { attention: 'contrib' });
    try {
      const context = await family.tensor(inter.encoder_hidden_states);
      const pooled = await family.tensor(inter.pooled_projections);
      const side = Math.sqrt((await family.tensor(c.inputs.latents_packed)).shape[1]);
      for (const [step, sigma] of sigmas.entries()) {
        const latents = await family.tensor(step === 0 ? c.inputs.latents_packed : inter[`step${step - 1}.latents_after`]);
        const out = await run(model, {
          [IO.hiddenStates]: { data: latents.data, dims: latents.shape },
          [IO.encoderHiddenStates]: { data: context.data, dims: context.shape },
          [IO.pooledProjections]: { data: pooled.data, dims: pooled.shape },
          [IO.timestep]: { data: [sigma], dims: [1] },
          [IO.imgIds]: imgIds(side, side),
          [IO.txtIds]: { data: new Array(context.shape[1] * 3).fill(0), dims: [context.shape[1], 3] },
        });
        const expected = await family.tensor(inter[`step${step}.transformer_output`]);
        worst[`flux.txt2img step${step} transformer (σ ${sigma})`] = maxAbsError(out.data, expected.data).toExponential(2);
        expectWithinAtol(`step${step}`, out.data, expected.data, c.tolerance.atol!);
      }
    } finally {
      await model.release();
    }
  });

  for (const [quant, keepQuantized] of [['Q8_0', false], ['Q4_0', false], ['Q8_0', true], ['Q4_0', true]] as const) {
    const how = keepQuantized ? 'kept quantized as MatMulNBits' : 'dequantized in float32 by the reader';
    it(`GGUF ${quant} (city96 layout, ${how}): the gguf_${quant} cases within atol`, async () => {
      const file = await openGguf(path.join(family.dir, `flux1-schnell-tiny-${quant}.gguf`));
      opened.push(file);
      const weights = WeightSet.fromFile(file);
      const model = await session(detectFluxConfig(weights, hints), weights, { attention: 'contrib', keepQuantized });
      try {
        for (const id of CASES.map((c) => `${c}.gguf_${quant}`)) {
          const c = family.case(id);
          const out = await run(model, await feeds(id));
          const expected = await family.tensor(c.outputs.output);
          expect(out.dims).toEqual(expected.shape);
          worst[`${id} contrib${keepQuantized ? ' MatMulNBits' : ''}`] = maxAbsError(out.data, expected.data).toExponential(2);
          expectWithinAtol(id, out.data, expected.data, c.tolerance.atol!);
        }
      } finally {
        await model.release();
      }
    });
  }

  it('a float16 graph runs on the CPU provider within float16 accuracy of the float32 graph', async () => {
    const config = detectFluxConfig(bfl, hints);
    const f32 = await session(config, bfl, { attention: 'standard' });
    const reference = await run(f32, await feeds(CASES[1]));
    await f32.release();
    for (const attention of ['contrib', 'standard'] as AttentionKind[]) {
      const f16 = await session(config, bfl, { attention, floatType: 'float16' });
      try {
        const out = await run(f16, await feeds(CASES[1]));
        const rel = normwiseRelError(out.data, reference.data);
        worst[`float16 ${attention} vs float32 (normwise rel)`] = rel.toExponential(2);
        expect(rel).toBeLessThan(1e-2);
      } finally {
        await f16.release();
      }
    }
  });
});

/** Another configuration: 3 heads × 24 (axes [8, 8, 8]), 1 double + 2 single blocks, mlp ratio 3, dev-style guidance. */
const OTHER = {
  hiddenSize: 72,
  headDim: 24,
  depth: 1,
  depthSingleBlocks: 2,
  inChannels: 16,
  outChannels: 12,
  contextDim: 40,
  pooledDim: 20,
  timestepEmbedDim: 256,
  mlpHiddenDim: 216,
  guidanceEmbed: true,
  qkvBias: false,
};
const OTHER_HINTS: FluxHints = { heads: 3, axesDimsRope: [8, 8, 8] };

/** Random-weight tensors of `shapes` (weights U(±1/√fan_in), biases U(±0.05), norm scales 1 + U(±0.1)). */
function randomTensors(shapes: Map<string, number[]>, seed: number): TensorToWrite[] {
  return [...shapes].map(([key, shape], index) => ({
    key,
    dtype: 'F32',
    shape,
    values: () => {
      const next = createMulberry32(seed * 7919 + index);
      const n = shape.reduce((a, b) => a * b, 1);
      const v = new Float32Array(n);
      const bound = shape.length === 2 ? 1 / Math.sqrt(shape[1]) : 0.05;
      for (let i = 0; i < n; i++) v[i] = (key.endsWith('.scale') ? 1 : 0) + (next() * 2 - 1) * (key.endsWith('.scale') ? 0.1 : bound);
      return v;
    },
  }));
}

async function writeModel(name: string, tensors: TensorToWrite[]): Promise<WeightSet> {
  const file = path.join(dir, name);
  await writeSafetensors(file, tensors);
  return WeightSet.fromFile(await open(file));
}

function randomFeed(dims: number[], seed: number, scale = 1): Feed {
  const next = createMulberry32(seed);
  return { data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (next() * 2 - 1) * scale), dims };
}

/** img_ids rows (0, r, c) of an h × w token grid. */
function imgIds(h: number, w: number): Feed {
  const data: number[] = [];
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) data.push(0, r, c);
  return { data, dims: [h * w, 3] };
}

describe('another configuration (generated): guidance embedding, 3 × 24 heads, mlp ratio 3, no qkv bias', () => {
  let weights: WeightSet;
  beforeAll(async () => {
    weights = await writeModel('other.safetensors', randomTensors(fluxTensorShapes(OTHER), 3));
  });

  it('detects every field from the tensors and the hints', () => {
    const config = detectFluxConfig(weights, OTHER_HINTS);
    expect(config).toEqual({
      ...OTHER,
      heads: 3,
      mlpRatio: 3,
      axesDim: [8, 8, 8],
      theta: 10000,
      layerNormEps: 1e-6,
      rmsNormEps: 1e-6,
      timeFactor: 1000,
    });
  });

  it('builds and runs with a batch of 2 in both attention kinds: [2, tokens, outChannels], rows equal single-row runs, kinds agree', async () => {
    const config = detectFluxConfig(weights, OTHER_HINTS);
    const [h, w, L] = [3, 5, 7];
    const N = h * w;
    const batch = (seed: number) => ({
      [IO.hiddenStates]: randomFeed([2, N, OTHER.inChannels], seed),
      [IO.encoderHiddenStates]: randomFeed([2, L, OTHER.contextDim], seed + 1),
      [IO.pooledProjections]: randomFeed([2, OTHER.pooledDim], seed + 2),
      [IO.timestep]: { data: [0.25, 0.9], dims: [2] },
      [IO.guidance]: { data: [3.5, 1.0], dims: [2] },
      [IO.imgIds]: imgIds(h, w),
      [IO.txtIds]: { data: new Array(L * 3).fill(0), dims: [L, 3] },
    });
    const row = (feeds: Record<string, Feed>, b: number): Record<string, Feed> => {
      const out: Record<string, Feed> = {};
      for (const [name, f] of Object.entries(feeds)) {
        if (name === IO.imgIds || name === IO.txtIds) out[name] = f;
        else {
          const size = f.data.length / 2;
          out[name] = { data: Array.from(f.data as ArrayLike<number>).slice(b * size, (b + 1) * size), dims: [1, ...f.dims.slice(1)] };
        }
      }
      return out;
    };
    const feeds = batch(11);
    const outputs: Float32Array[] = [];
    for (const attention of ['contrib', 'standard'] as const) {
      const model = await session(config, weights, { attention });
      try {
        const out = await run(model, feeds);
        expect(out.dims).toEqual([2, N, OTHER.outChannels]);
        expect(out.data.every(Number.isFinite)).toBe(true);
        for (const b of [0, 1]) {
          const single = await run(model, row(feeds, b));
          const size = N * OTHER.outChannels;
          expect(maxAbsError(out.data.subarray(b * size, (b + 1) * size), single.data), `row ${b} (${attention})`).toBeLessThan(1e-5);
        }
        outputs.push(out.data);
      } finally {
        await model.release();
      }
    }
    expect(maxAbsError(outputs[0], outputs[1])).toBeLessThan(1e-5);
  });

  it('guidance is embedded like the timestep: with guidance_in = time_in, swapping σ and guidance/1000 leaves the output unchanged', async () => {
    const tensors = randomTensors(fluxTensorShapes(OTHER), 3);
    const timeIn = new Map(tensors.filter((t) => t.key.startsWith('time_in.')).map((t) => [t.key.replace('time_in.', 'guidance_in.'), t.values]));
    const mirrored = tensors.map((t) => (timeIn.has(t.key) ? { ...t, values: timeIn.get(t.key)! } : t));
    const w = await writeModel('mirrored.safetensors', mirrored);
    const model = await session(detectFluxConfig(w, OTHER_HINTS), w, { attention: 'contrib' });
    try {
      const base = {
        [IO.hiddenStates]: randomFeed([1, 4, OTHER.inChannels], 5),
        [IO.encoderHiddenStates]: randomFeed([1, 3, OTHER.contextDim], 6),
        [IO.pooledProjections]: randomFeed([1, OTHER.pooledDim], 7),
        [IO.imgIds]: imgIds(2, 2),
        [IO.txtIds]: { data: new Array(9).fill(0), dims: [3, 3] },
      };
      // vec = time_in(emb(1000σ)) + guidance_in(emb(1000g)) + …: with equal weights, swapping σ and g swaps two
      // float32 addends, which leaves every bit of the output unchanged; another g changes it.
      const a = await run(model, { ...base, [IO.timestep]: { data: [0.375], dims: [1] }, [IO.guidance]: { data: [0.0035], dims: [1] } });
      const b = await run(model, { ...base, [IO.timestep]: { data: [0.0035], dims: [1] }, [IO.guidance]: { data: [0.375], dims: [1] } });
      const c = await run(model, { ...base, [IO.timestep]: { data: [0.375], dims: [1] }, [IO.guidance]: { data: [0.5], dims: [1] } });
      expect(maxAbsError(a.data, b.data)).toBe(0);
      expect(maxAbsError(a.data, c.data)).toBeGreaterThan(1e-3);
    } finally {
      await model.release();
    }
  });
});

describe('broken files and hints are refused with a reason', () => {
  const variant = async (name: string, edit: (t: Map<string, number[]>) => void) => {
    const shapes = fluxTensorShapes(OTHER);
    edit(shapes);
    return writeModel(name, randomTensors(shapes, 4));
  };

  it('a missing tensor names it', async () => {
    const w = await variant('missing.safetensors', (t) => t.delete('single_blocks.1.linear2.bias'));
    expect(() => detectFluxConfig(w, OTHER_HINTS)).toThrow(MissingWeightError);
    expect(() => detectFluxConfig(w, OTHER_HINTS)).toThrow(/no tensor "single_blocks\.1\.linear2\.bias"/);
  });

  it('a file without FLUX.1 tensors is not detected as FLUX.1', async () => {
    const w = await variant('not-flux.safetensors', (t) => {
      for (const k of [...t.keys()]) if (k.startsWith('double_blocks.')) t.delete(k);
    });
    expect(() => detectFluxConfig(w, OTHER_HINTS)).toThrow(/no tensor "double_blocks\.0\.img_attn\.norm\.query_norm\.scale"/);
  });

  it('a shape that contradicts the others names the tensor and both shapes', async () => {
    const w = await variant('bad-linear1.safetensors', (t) => t.set('single_blocks.0.linear1.weight', [3 * 72 + 200, 72]));
    expect(() => detectFluxConfig(w, OTHER_HINTS)).toThrow(WeightShapeError);
    expect(() => detectFluxConfig(w, OTHER_HINTS)).toThrow(/"single_blocks\.0\.linear1\.weight" has shape \[416, 72\], the architecture needs \[432, 72\]/);
  });

  it('tensors FLUX.1 does not have are refused (not silently ignored)', async () => {
    const w = await variant('extra.safetensors', (t) => t.set('controlnet_blocks.0.weight', [72, 72]));
    expect(() => detectFluxConfig(w, OTHER_HINTS)).toThrow(/1 tensor\(s\) a FLUX\.1 transformer does not have \(controlnet_blocks\.0\.weight\)/);
  });

  it('hints that do not fit the tensors', async () => {
    const w = await variant('ok.safetensors', () => {});
    expect(() => detectFluxConfig(w, { ...OTHER_HINTS, heads: 4 })).toThrow(FluxHintError);
    expect(() => detectFluxConfig(w, { ...OTHER_HINTS, heads: 4 })).toThrow(/4 attention heads do not fit the tensors: hidden size 72 with QK-norm head width 24 has 3/);
    expect(() => detectFluxConfig(w, { heads: 3 })).toThrow(/axesDimsRope \[16, 56, 56\] must be positive even widths summing to the head width 24 \(the FLUX\.1 default fits only 128-wide heads/);
    expect(() => detectFluxConfig(w, { axesDimsRope: [8, 9, 7] })).toThrow(/must be positive even widths/);
    expect(() => fluxHintsFromDiffusersConfig({ num_attention_heads: 'two' })).toThrow(/num_attention_heads must be a positive integer/);
    expect(() => detectFluxConfig(w, fluxHintsFromDiffusersConfig({ num_attention_heads: 3, attention_head_dim: 16, axes_dims_rope: [8, 8, 8] }))).toThrow(/head width 16 does not fit the tensors: the QK-norm scales are 24 wide/);
  });

  it('the key map names a missing part of a fused tensor', async () => {
    const shapes = new Map<string, number[]>([
      ['transformer_blocks.0.attn.to_q.weight', [8, 8]],
      ['transformer_blocks.0.attn.to_v.weight', [8, 8]],
    ]);
    const w = await writeModel('partial-diffusers.safetensors', randomTensors(shapes, 5));
    expect(() => diffusersFluxWeights(w)).toThrow(/no tensor "transformer_blocks\.0\.attn\.to_k\.weight"/);
  });
});
