/**
 * The SD3.x MMDiT graph builder, its config detection and the diffusers → original key map against upstream: the
 * tiny SD3.5 (MMDiT-X, QK-norm) transformer's reference outputs (diffusers SD3Transformer2DModel, float32) from
 * the single file and from the diffusers folder, both attention kinds, a float16 graph on the CPU provider, and
 * detection on other configurations written here with writeSafetensors.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectMmditConfig, MmditHintError, mmditHintsFromDiffusersConfig, type MmditConfig, type MmditHints } from '../../gpu-service/src/checkpoints/detect/mmdit-config';
import { diffusersSd3Weights } from '../../gpu-service/src/checkpoints/key-maps/diffusers-sd3';
import type { AttentionKind } from '../../gpu-service/src/graphs/layers';
import { buildMmditGraph, MMDIT_IO, type MmditGraphOptions } from '../../gpu-service/src/graphs/mmdit';
import { OnnxModel, type Feed } from '../../gpu-service/src/onnx/session';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { writeSafetensors, type TensorToWrite } from '../../gpu-service/src/weights/safetensors-writer';
import type { TensorFile } from '../../gpu-service/src/weights/tensor-file';
import { MissingWeightError, WeightSet, WeightShapeError } from '../../gpu-service/src/weights/weight-set';
import { expectWithinAtol, hasFixture, maxAbsError, openFixtureFamily, type FixtureCase, type FixtureFamily } from '../helpers/checkpoint-fixtures';
import { diffusersSd3Tensors, mmditTensors, type MmditSpec } from '../helpers/mmdit-checkpoint';

const FAMILY = 'checkpoints-dit/sd3.5';
const CASES = ['sd35.transformer.square', 'sd35.transformer.nonsquare'];

let dir: string;
const opened: TensorFile[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mmdit-graph-'));
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
/** Build, save and open the graph of `config`. */
async function session(config: MmditConfig, weights: WeightSet, opts: MmditGraphOptions): Promise<OnnxModel> {
  const { modelPath } = await buildMmditGraph(config, weights, opts).save(path.join(dir, `g${graphCount++}`));
  return OnnxModel.open(modelPath);
}

async function runMmdit(model: OnnxModel, feeds: Record<string, Feed>): Promise<{ data: Float32Array; dims: readonly number[] }> {
  return (await model.run(feeds, [MMDIT_IO.outSample]))[MMDIT_IO.outSample];
}

const worst: Record<string, string> = {};
afterAll(() => {
  if (Object.keys(worst).length) console.log('MMDiT fixture errors (max abs):', worst);
});

describe.skipIf(!hasFixture(FAMILY))('SD3.5 MMDiT-X against diffusers', () => {
  /** cases.json `models["sd3.5"]`: the diffusers SD3Transformer2DModel config and the files. */
  type Sd35Model = {
    transformer: Record<'patch_size' | 'in_channels' | 'out_channels' | 'num_layers' | 'attention_head_dim' | 'num_attention_heads' | 'joint_attention_dim' | 'caption_projection_dim' | 'pooled_projection_dim' | 'pos_embed_max_size', number> & {
      dual_attention_layers: number[];
      qk_norm: string | null;
    };
    files: { single_file: { path: string }; diffusers: { path: string } };
  };
  let family: FixtureFamily;
  let model: Sd35Model;
  let diffusersConfig: Record<string, unknown>;
  beforeAll(async () => {
    family = await openFixtureFamily(FAMILY);
    opened.push(family.reference);
    model = (family.json.models as Record<string, Sd35Model>)['sd3.5'];
    diffusersConfig = JSON.parse(readFileSync(path.join(family.dir, model.files.diffusers.path, 'transformer', 'config.json'), 'utf8'));
  });

  const singleFile = async () => WeightSet.fromFile(await open(path.join(family.dir, model.files.single_file.path)), 'model.diffusion_model.');
  const diffusersFile = async () => diffusersSd3Weights(await open(path.join(family.dir, model.files.diffusers.path, 'transformer', 'diffusion_pytorch_model.safetensors')));

  const feeds = async (fc: FixtureCase): Promise<Record<string, Feed>> => {
    const feed = async (name: string) => {
      const t = await family.tensor(name);
      return { data: t.data, dims: t.shape };
    };
    return {
      [MMDIT_IO.sample]: await feed(fc.inputs.hidden_states),
      [MMDIT_IO.encoderHiddenStates]: await feed(fc.inputs.encoder_hidden_states),
      [MMDIT_IO.pooledProjections]: await feed(fc.inputs.pooled_projections),
      [MMDIT_IO.timestep]: await feed(fc.inputs.timestep),
    };
  };

  /** Run both transformer cases on `onnx`; returns the worst error, recording it under `label`. */
  const checkCases = async (onnx: OnnxModel, label: string, bound: (fc: FixtureCase) => number) => {
    for (const id of CASES) {
      const fc = family.case(id);
      const out = await runMmdit(onnx, await feeds(fc));
      const expected = await family.tensor(fc.outputs.output);
      expect(out.dims).toEqual(expected.shape);
      worst[`${id} (${label})`] = maxAbsError(out.data, expected.data).toExponential(2);
      expectWithinAtol(`${id} (${label})`, out.data, expected.data, bound(fc));
    }
  };
  const atol = (fc: FixtureCase) => fc.tolerance.atol!;

  it('detects the config of the single file (patch, width, depth, grid, widths, QK-norm, dual-attention layers)', async () => {
    const t = model.transformer;
    const weights = await singleFile();
    const hints = mmditHintsFromDiffusersConfig(diffusersConfig);
    expect(hints).toEqual({ heads: t.num_attention_heads, headDim: t.attention_head_dim });
    const config = detectMmditConfig(weights, hints);
    expect(config).toEqual({
      patchSize: t.patch_size,
      inChannels: t.in_channels,
      outChannels: t.out_channels,
      hiddenSize: t.num_attention_heads * t.attention_head_dim,
      depth: t.num_layers,
      heads: t.num_attention_heads,
      headDim: t.attention_head_dim,
      posEmbedMaxSize: t.pos_embed_max_size,
      contextDim: t.joint_attention_dim,
      pooledDim: t.pooled_projection_dim,
      timestepEmbedDim: 256,
      mlpHiddenDim: 4 * t.caption_projection_dim,
      mlpRatio: 4,
      qkNorm: t.qk_norm === 'rms_norm' ? 'rms' : null,
      dualAttentionLayers: t.dual_attention_layers,
      layerNormEps: 1e-6,
      qkNormEps: 1e-6,
      variant: null,
    } satisfies MmditConfig);
    // With QK-norm the head width is in the tensors: no hints needed, and hints that disagree are refused.
    expect(detectMmditConfig(weights)).toEqual(config);
    expect(() => detectMmditConfig(weights, { heads: 4 })).toThrow(MmditHintError);
    expect(() => detectMmditConfig(weights, { headDim: 8 })).toThrow(/the hints give 8 channels per head, the QK-norm weights \(ln_q\) have 16/);
  });

  it('single file (fp16, model.diffusion_model.*): both cases within atol with contrib and standard attention', async () => {
    const weights = await singleFile();
    const config = detectMmditConfig(weights);
    for (const attention of ['contrib', 'standard'] as const satisfies AttentionKind[]) {
      const onnx = await session(config, weights, { attention });
      try {
        await checkCases(onnx, `single file, ${attention}`, atol);
      } finally {
        await onnx.release();
      }
    }
  });

  it('diffusers transformer through the key map: the single file’s names, shapes and values bit for bit, and the same outputs', async () => {
    const [mapped, single] = [await diffusersFile(), await singleFile()];
    expect(mapped.names().sort()).toEqual(single.names().sort());
    for (const name of single.names()) {
      expect(mapped.shape(name), name).toEqual(single.shape(name));
      const [a, b] = await Promise.all([mapped.read(name), single.read(name)]);
      expect(firstDifference(a, b), name).toBe(-1);
    }
    // The assembled tensors keep their stored parts as sources (dtypes, LoRA targets named the diffusers way).
    expect(mapped.ref('joint_blocks.0.x_block.attn.qkv.weight').sources?.map((s) => s.key)).toEqual([
      'transformer_blocks.0.attn.to_q.weight',
      'transformer_blocks.0.attn.to_k.weight',
      'transformer_blocks.0.attn.to_v.weight',
    ]);

    const config = detectMmditConfig(mapped, mmditHintsFromDiffusersConfig(diffusersConfig));
    expect(config).toEqual(detectMmditConfig(single));
    const onnx = await session(config, mapped, { attention: 'contrib' });
    try {
      await checkCases(onnx, 'diffusers, contrib', atol);
    } finally {
      await onnx.release();
    }
  });

  it('a float16 graph runs on the CPU provider within float16 accuracy, with both attention kinds', async () => {
    const weights = await singleFile();
    const config = detectMmditConfig(weights);
    for (const attention of ['contrib', 'standard'] as const satisfies AttentionKind[]) {
      const onnx = await session(config, weights, { floatType: 'float16', attention });
      try {
        expect(onnx.inputs.map((i) => i.type)).toEqual(['float16', 'float16', 'float16', 'float32']);
        // float16 keeps 11 significant bits (unit roundoff u = 2⁻¹¹); the measured error is ~1.3·u·max|ref|
        // (2.7e-3 on outputs up to 4.4): bound it at 4·u·max|ref|.
        await checkCases(onnx, `single file, float16, ${attention}`, (fc) => 4 * 2 ** -11 * (fc.tolerance as unknown as { max_abs_value: number }).max_abs_value);
      } finally {
        await onnx.release();
      }
    }
  });
});

/** Index of the first differing element, or −1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

describe('MMDiT detection on other configurations', () => {
  async function written(name: string, tensors: TensorToWrite[]): Promise<WeightSet> {
    const file = path.join(dir, `${name}.safetensors`);
    await writeSafetensors(file, tensors);
    return WeightSet.fromFile(await open(file), 'model.diffusion_model.');
  }

  // SD3 Medium 3.0-style: no QK-norm, no dual attention; other depth, width, MLP ratio, channels and grid.
  const medium: MmditSpec = {
    patchSize: 2,
    inChannels: 4,
    outChannels: 8,
    hiddenSize: 48,
    depth: 4,
    posEmbedMaxSize: 8,
    contextDim: 24,
    pooledDim: 12,
    mlpRatio: 2,
    dualAttentionLayers: [],
  };
  const mediumHints: MmditHints = { headDim: 16 };

  const inputs = (B: number, H: number, W: number, spec: MmditSpec, L = 5): Record<string, Feed> => ({
    [MMDIT_IO.sample]: { data: Float32Array.from({ length: B * spec.inChannels * H * W }, (_, i) => Math.sin(i * 0.37)), dims: [B, spec.inChannels, H, W] },
    [MMDIT_IO.encoderHiddenStates]: { data: Float32Array.from({ length: B * L * spec.contextDim }, (_, i) => Math.cos(i * 0.11)), dims: [B, L, spec.contextDim] },
    [MMDIT_IO.pooledProjections]: { data: Float32Array.from({ length: B * spec.pooledDim }, (_, i) => Math.sin(i * 0.7)), dims: [B, spec.pooledDim] },
    [MMDIT_IO.timestep]: { data: Array.from({ length: B }, (_, i) => 1000 - 337.5 * i), dims: [B] },
  });

  it('no QK-norm, no dual attention, depth 4 × width 48: detected config, and a graph whose output has the sample’s shape', async () => {
    const weights = await written('medium', mmditTensors(medium));
    const config = detectMmditConfig(weights, mediumHints);
    expect(config).toEqual({
      patchSize: 2,
      inChannels: 4,
      outChannels: 8,
      hiddenSize: 48,
      depth: 4,
      heads: 3,
      headDim: 16,
      posEmbedMaxSize: 8,
      contextDim: 24,
      pooledDim: 12,
      timestepEmbedDim: 256,
      mlpHiddenDim: 96,
      mlpRatio: 2,
      qkNorm: null,
      dualAttentionLayers: [],
      layerNormEps: 1e-6,
      qkNormEps: 1e-6,
      variant: null,
    } satisfies MmditConfig);
    // Without QK-norm or hints, heads follow SD3's 64 channels per head, which 48 does not split into.
    expect(() => detectMmditConfig(weights)).toThrow(/a head width of 64 does not divide the transformer's width 48/);
    expect(detectMmditConfig(weights, { heads: 3 })).toEqual(config);
    expect(() => detectMmditConfig(weights, { heads: 4, headDim: 16 })).toThrow(/4 heads × 16 channels ≠ the transformer's width 48/);

    // 12×10 latents (a 6×5 patch grid cropped from the 8×8 pos_embed), batch 2, timesteps per row.
    const feeds = inputs(2, 12, 10, medium);
    const outs: Float32Array[] = [];
    for (const attention of ['contrib', 'standard'] as const) {
      const onnx = await session(config, weights, { attention });
      try {
        expect(onnx.inputs.map((i) => i.name)).toEqual([MMDIT_IO.sample, MMDIT_IO.encoderHiddenStates, MMDIT_IO.pooledProjections, MMDIT_IO.timestep]);
        const out = await runMmdit(onnx, feeds);
        expect(out.dims).toEqual([2, 8, 12, 10]);
        expect(out.data.every(Number.isFinite)).toBe(true);
        outs.push(out.data);
      } finally {
        await onnx.release();
      }
    }
    expect(maxAbsError(outs[0], outs[1])).toBeLessThan(1e-5);
  });

  it('dual attention in layers 1 and 3 with QK-norm: detected from attn2 and ln_q; pooled, timestep and context reach the output', async () => {
    const spec: MmditSpec = { ...medium, depth: 4, qkNormHeadDim: 12, dualAttentionLayers: [1, 3] };
    const weights = await written('dual', mmditTensors(spec));
    const config = detectMmditConfig(weights);
    expect([config.heads, config.headDim, config.qkNorm, config.dualAttentionLayers]).toEqual([4, 12, 'rms', [1, 3]]);
    const onnx = await session(config, weights, { attention: 'contrib' });
    try {
      const base = inputs(1, 8, 8, spec);
      const a = await runMmdit(onnx, base);
      expect(a.dims).toEqual([1, 8, 8, 8]);
      const changed = async (name: string, data: ArrayLike<number>) => runMmdit(onnx, { ...base, [name]: { data, dims: base[name].dims } });
      for (const [name, data] of [
        [MMDIT_IO.timestep, [10]],
        [MMDIT_IO.pooledProjections, new Float32Array(spec.pooledDim)],
        [MMDIT_IO.encoderHiddenStates, new Float32Array(5 * spec.contextDim)],
      ] as const) {
        expect(maxAbsError((await changed(name, data)).data, a.data), name).toBeGreaterThan(1e-3);
      }
    } finally {
      await onnx.release();
    }
  });

  it('latents larger than the pos_embed grid, or not a multiple of the patch size, fail instead of computing something else', async () => {
    const weights = await written('sizes', mmditTensors(medium));
    const onnx = await session(detectMmditConfig(weights, mediumHints), weights, { attention: 'contrib' });
    try {
      for (const side of [18, 20, 34]) await expect(runMmdit(onnx, inputs(1, side, side, medium)), `${side}×${side}`).rejects.toThrow(/onnxruntime run failed/);
      for (const [h, w] of [[8, 7], [7, 8]]) await expect(runMmdit(onnx, inputs(1, h, w, medium)), `${h}×${w}`).rejects.toThrow(/onnxruntime run failed/);
      expect((await runMmdit(onnx, inputs(1, 16, 4, medium))).dims).toEqual([1, 8, 16, 4]);
    } finally {
      await onnx.release();
    }
  });

  it('missing, unused and inconsistent tensors are refused with the tensor named', async () => {
    const tensors = mmditTensors(medium);
    const without = (key: string) => tensors.filter((t) => t.key !== `model.diffusion_model.${key}`);
    const reshaped = (key: string, shape: number[]) =>
      tensors.map((t) => (t.key === `model.diffusion_model.${key}` ? { ...t, shape, values: () => new Float32Array(shape.reduce((a, b) => a * b, 1)) } : t));
    const extra = (key: string, shape: number[]): TensorToWrite[] => [...tensors, { key: `model.diffusion_model.${key}`, dtype: 'F32', shape, values: () => new Float32Array(shape.reduce((a, b) => a * b, 1)) }];

    const noPatch = await written('no-patch', without('x_embedder.proj.weight'));
    expect(() => detectMmditConfig(noPatch, mediumHints)).toThrow(MissingWeightError);
    expect(() => detectMmditConfig(noPatch, mediumHints)).toThrow(/has no tensor "x_embedder\.proj\.weight"/);

    const missing = await written('missing', without('joint_blocks.2.context_block.mlp.fc2.weight'));
    expect(() => buildMmditGraph(detectMmditConfig(missing, mediumHints), missing)).toThrow(/has no tensor "joint_blocks\.2\.context_block\.mlp\.fc2\.weight"/);

    const gap = await written('gap', tensors.filter((t) => !t.key.includes('joint_blocks.1.')));
    expect(() => detectMmditConfig(gap, mediumHints)).toThrow(/joint blocks go up to 3 but joint_blocks\.1 has no x_block \/ context_block attention/);

    // A last block whose context stream is not pre-only (an MLP there): not the SD3 layout.
    const notPreOnly = await written('not-pre-only', extra('joint_blocks.3.context_block.mlp.fc1.weight', [96, 48]));
    expect(() => buildMmditGraph(detectMmditConfig(notPreOnly, mediumHints), notPreOnly)).toThrow(/1 tensor\(s\) the detected MMDiT architecture does not use \(joint_blocks\.3\.context_block\.mlp\.fc1\.weight\)/);

    // A dual-attention layer needs 9 modulation chunks.
    const sixChunks = await written('six-chunks', [...mmditTensors({ ...medium, dualAttentionLayers: [0] }).map((t) => (t.key.endsWith('joint_blocks.0.x_block.adaLN_modulation.1.weight') ? { ...t, shape: [288, 48], values: () => new Float32Array(288 * 48) } : t))]);
    expect(() => buildMmditGraph(detectMmditConfig(sixChunks, mediumHints), sixChunks)).toThrow(WeightShapeError);
    expect(() => buildMmditGraph(detectMmditConfig(sixChunks, mediumHints), sixChunks)).toThrow(/joint_blocks\.0\.x_block\.adaLN_modulation\.1\.weight" has shape \[288, 48\], the architecture needs \[432, 48\]/);

    const context = await written('context', reshaped('context_embedder.weight', [32, 24]));
    expect(() => detectMmditConfig(context, mediumHints)).toThrow(/context_embedder\.weight" has shape \[32, 24\], the architecture needs \[48, 24\]/);
    const grid = await written('grid', reshaped('pos_embed', [1, 60, 48]));
    expect(() => detectMmditConfig(grid, mediumHints)).toThrow(/"pos_embed" has shape \[1, 60, 48\]/);
    const final = await written('final', reshaped('final_layer.linear.weight', [30, 48]));
    expect(() => detectMmditConfig(final, mediumHints)).toThrow(/final_layer\.linear has 30 outputs, not a multiple of patch_size² = 4/);
  });
  it('key map on a generated SD3-Medium-style model (no QK-norm, no attn2): upstream’s conversion inverted bit for bit; incomplete and mixed files refused', async () => {
    const { original, diffusers } = diffusersSd3Tensors(mmditTensors(medium));
    const single = await written('km-original', original);
    const writeDiffusers = async (name: string, tensors: TensorToWrite[]) => {
      const file = path.join(dir, `${name}.safetensors`);
      await writeSafetensors(file, tensors);
      return open(file);
    };
    const mapped = diffusersSd3Weights(await writeDiffusers('km-diffusers', diffusers));
    expect(mapped.names().sort()).toEqual(single.names().sort());
    for (const name of single.names()) {
      expect(mapped.shape(name), name).toEqual(single.shape(name));
      expect(firstDifference(await mapped.read(name), await single.read(name)), name).toBe(-1);
    }
    expect(detectMmditConfig(mapped, mediumHints)).toEqual(detectMmditConfig(single, mediumHints));

    const noToV = await writeDiffusers('km-no-to-v', diffusers.filter((t) => t.key !== 'transformer_blocks.1.attn.to_v.weight'));
    expect(() => diffusersSd3Weights(noToV)).toThrow(MissingWeightError);
    expect(() => diffusersSd3Weights(noToV)).toThrow(/has no tensor "transformer_blocks\.1\.attn\.to_v\.weight"/);
    // A key the map does not know stays under its own name, so the builder refuses it instead of dropping it.
    const unknown = diffusersSd3Weights(await writeDiffusers('km-unknown', [...diffusers, { key: 'transformer_blocks.0.attn.to_gate.weight', dtype: 'F32', shape: [48, 48], values: () => new Float32Array(48 * 48) }]));
    expect(() => buildMmditGraph(detectMmditConfig(unknown, mediumHints), unknown)).toThrow(/does not use \(transformer_blocks\.0\.attn\.to_gate\.weight\)/);
    const mixed = await writeDiffusers('km-mixed', [...diffusers, { key: 'x_embedder.proj.bias', dtype: 'F32', shape: [48], values: () => new Float32Array(48) }]);
    expect(() => diffusersSd3Weights(mixed)).toThrow(/"x_embedder\.proj\.bias" is both a stored tensor and the original name of a diffusers one/);
  });
  it('real sizes (shapes only, nothing read): SD3 Medium, SD3.5 Large / Large Turbo and SD3.5 Medium are recognised and their graphs build', () => {
    const real = { patchSize: 2, inChannels: 16, outChannels: 16, contextDim: 4096, pooledDim: 2048, mlpRatio: 4 };
    const models: Array<[string, MmditSpec, Partial<MmditConfig>]> = [
      ['sd3-medium', { ...real, hiddenSize: 1536, depth: 24, posEmbedMaxSize: 192, dualAttentionLayers: [] }, { heads: 24, qkNorm: null }],
      ['sd3.5-large', { ...real, hiddenSize: 2432, depth: 38, posEmbedMaxSize: 192, qkNormHeadDim: 64, dualAttentionLayers: [] }, { heads: 38, qkNorm: 'rms' }],
      ['sd3.5-medium', { ...real, hiddenSize: 1536, depth: 24, posEmbedMaxSize: 384, qkNormHeadDim: 64, dualAttentionLayers: [...Array(13).keys()] }, { heads: 24, qkNorm: 'rms' }],
    ];
    const stub = { path: 'shapes only' } as TensorFile;
    for (const [variant, spec, expected] of models) {
      const refs = new Map(mmditTensors(spec, '').map((t) => [t.key, { file: stub, key: t.key, shape: [...t.shape] }]));
      const weights = new WeightSet(refs, variant);
      const config = detectMmditConfig(weights);
      expect(config).toMatchObject({ ...expected, variant, headDim: 64, posEmbedMaxSize: spec.posEmbedMaxSize, dualAttentionLayers: spec.dualAttentionLayers });
      expect(buildMmditGraph(config, weights).weights().length, variant).toBe(refs.size);
    }
  });
});
