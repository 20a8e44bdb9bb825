/**
 * CLIP text encoder graphs built from checkpoint tensors (checkpoints/detect/clip-text-config.ts +
 * graphs/clip-text-encoder.ts), run on onnxruntime's CPU provider in float32 against upstream's outputs for
 * the tiny fixtures (transformers CLIPTextModel(WithProjection); ../shared/fixtures/checkpoints*), in both
 * checkpoint layouts and with both attention kinds; plus detection on configurations of other shapes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClipTextConfigError,
  clipTextHintsFromTransformersConfig,
  detectClipTextConfig,
  type ClipTextConfig,
  type ClipTextHints,
} from '../../gpu-service/src/checkpoints/detect/clip-text-config';
import { layerNorm, readFinalLayerNorm } from '../../gpu-service/src/diffusion/final-layer-norm';
import { buildClipTextEncoder , CLIP_TEXT_INPUTS } from '../../gpu-service/src/graphs/clip-text-encoder';
import type { AttentionKind } from '../../gpu-service/src/graphs/layers';
import type { FloatType } from '../../gpu-service/src/graphs/onnx-graph';
import { OnnxModel, type Fetches } from '../../gpu-service/src/onnx/session';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { writeSafetensors, type TensorToWrite } from '../../gpu-service/src/weights/safetensors-writer';
import type { TensorFile } from '../../gpu-service/src/weights/tensor-file';
import { MissingWeightError, WeightSet, WeightShapeError } from '../../gpu-service/src/weights/weight-set';
import { expectWithinTolerance, hasFixture, normwiseRelError, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';

const ATTENTION: AttentionKind[] = ['contrib', 'standard'];

let work: string;
const opened: TensorFile[] = [];
/** Worst error per case (normwise relative for the SD 1/2 cases, max |diff| / atol for SDXL), printed at the end. */
const worst = new Map<string, number>();

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'clip-text-'));
});
afterAll(async () => {
  await Promise.all(opened.map((f) => f.close()));
  await rm(work, { recursive: true, force: true });
  if (worst.size) console.log(`CLIP text encoder worst errors: ${[...worst].map(([k, v]) => `${k} ${v.toExponential(2)}`).join('; ')}`);
});

function note(key: string, value: number): void {
  worst.set(key, Math.max(worst.get(key) ?? 0, value));
}

async function open(file: string): Promise<TensorFile> {
  const f = await openSafetensors(file);
  opened.push(f);
  return f;
}

/** Build, save and run the encoder graph on `ids` [rows, T]; every output, as float32, and the model's path. */
async function runGraph(config: ClipTextConfig, weights: WeightSet, ids: ArrayLike<number>, rows: number, opts: { attention: AttentionKind; floatType?: FloatType }): Promise<{ out: Fetches; modelPath: string }> {
  const dir = await mkdtemp(path.join(work, 'graph-'));
  const { modelPath } = await buildClipTextEncoder(config, weights, opts).save(dir);
  const model = await OnnxModel.open(modelPath);
  try {
    // No textual-inversion vectors: an empty extra table.
    const extra = { data: new Float32Array(0), dims: [0, config.hiddenSize] };
    return { out: await model.run({ input_ids: { data: ids, dims: [rows, ids.length / rows] }, [CLIP_TEXT_INPUTS.extraTokenEmbeddings]: extra }), modelPath };
  } finally {
    await model.release();
  }
}

async function runEncoder(config: ClipTextConfig, weights: WeightSet, ids: ArrayLike<number>, rows: number, opts: { attention: AttentionKind; floatType?: FloatType }): Promise<Fetches> {
  return (await runGraph(config, weights, ids, rows, opts)).out;
}

/** Entry `i` of a stacked reference [n, ...rest]. */
function entry(stack: { data: Float32Array; shape: number[] }, i: number): Float32Array {
  const size = stack.shape.slice(1).reduce((a, b) => a * b, 1);
  return stack.data.subarray(i * size, (i + 1) * size);
}

/** The fixtures' rule (rel), with the error recorded for the report. */
function expectRel(caseId: string, label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number): void {
  note(caseId, normwiseRelError(actual, expected));
  expectWithinTolerance(`${caseId} ${label}`, actual, expected, rel);
}

/** checkpoints-xl's rule: max |actual − expected| ≤ atol (per output). */
function expectAtol(caseId: string, label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number): void {
  expect(actual.length, `${caseId} ${label}: element count`).toBe(expected.length);
  let err = 0;
  for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(actual[i] - expected[i]));
  note(`${caseId} max|diff|/atol`, err / atol);
  note(`${caseId} normwise rel`, normwiseRelError(actual, expected));
  expect(err, `${caseId} ${label}: max |diff| ${err.toExponential(3)} exceeds atol ${atol}`).toBeLessThanOrEqual(atol);
}

describe.skipIf(!hasFixture('checkpoints'))('CLIP text encoder vs transformers (sd15-tiny, sd2-tiny)', () => {
  let sd15: FixtureFamily;
  let sd2: FixtureFamily;
  beforeAll(async () => {
    sd15 = await openFixtureFamily('checkpoints/sd15-tiny');
    sd2 = await openFixtureFamily('checkpoints/sd2-tiny');
    opened.push(sd15.reference, sd2.reference);
  });

  const sd15Layouts = [
    { name: 'single file (cond_stage_model.transformer.*)', file: 'sd15-tiny.safetensors', prefix: 'cond_stage_model.transformer.' },
    { name: 'diffusers text_encoder/model.safetensors', file: 'diffusers/text_encoder/model.safetensors', prefix: '' },
  ];
  for (const layout of sd15Layouts) {
    for (const attention of ATTENTION) {
      it(`sd15.text_encoder, ${layout.name}, ${attention} attention: every hidden state, last_hidden_state, pooler_output, clip skip`, async () => {
        const c = sd15.case('sd15.text_encoder');
        const rel = c.tolerance.rel;
        const weights = WeightSet.fromFile(await open(path.join(sd15.dir, layout.file)), layout.prefix);
        const teConfig = sd15.json.configs!.text_encoder as Record<string, number>;
        const config = detectClipTextConfig(weights, { family: 'sd1', ...clipTextHintsFromTransformersConfig(teConfig) });
        expect(config).toMatchObject({
          layout: 'transformers',
          hiddenSize: teConfig.hidden_size,
          layers: teConfig.num_hidden_layers,
          numHiddenLayers: teConfig.num_hidden_layers,
          intermediateSize: teConfig.intermediate_size,
          vocabSize: teConfig.vocab_size,
          maxPositions: teConfig.max_position_embeddings,
          projectionDim: null,
        });

        const ids = await sd15.tensor(c.inputs.input_ids);
        const rows = ids.shape[0];
        const { out, modelPath } = await runGraph(config, weights, ids.data, rows, { attention });
        const hidden = await sd15.tensor(c.outputs.hidden_states);
        expect(hidden.shape[0]).toBe(config.numHiddenLayers + 1);
        for (let i = 0; i <= config.numHiddenLayers; i++) expectRel(c.id, `hidden_states.${i}`, out[`hidden_states.${i}`].data, entry(hidden, i), rel);
        expectRel(c.id, 'last_hidden_state', out.last_hidden_state.data, (await sd15.tensor(c.outputs.last_hidden_state)).data, rel);
        expectRel(c.id, 'pooler_output', out.pooler_output.data, (await sd15.tensor(c.outputs.pooler_output)).data, rel);
        expect(out.pooler_output.dims).toEqual([rows, config.hiddenSize]);
        expect(Object.keys(out)).not.toContain('text_embeds');

        // diffusers clip_skip = 1 (A1111 'CLIP skip 2') for rows main, neg: the pipeline's own path takes the
        // penultimate hidden state and the final LayerNorm it reads from the graph's initializers.
        const skip = await sd15.tensor(c.outputs.prompt_embeds_clip_skip_1_rows_main_neg);
        const norm = await readFinalLayerNorm(modelPath, config.hiddenSize);
        expect(norm, 'final_layer_norm initializers in the graph').toBeDefined();
        const penultimate = out[`hidden_states.${config.numHiddenLayers - 1}`].data.subarray(0, skip.data.length);
        expectRel(c.id, 'clip_skip_1 rows main, neg', layerNorm(penultimate, config.hiddenSize, norm!), skip.data, rel);
      });
    }
  }

  for (const attention of ATTENTION) {
    it(`sd2.text_encoder, OpenCLIP single file, ${attention} attention: penultimate layer, every resblock's hidden state`, async () => {
      const c = sd2.case('sd2.text_encoder');
      const rel = c.tolerance.rel;
      const weights = WeightSet.fromFile(await open(path.join(sd2.dir, 'sd2-tiny.safetensors')), 'cond_stage_model.model.');
      const teConfig = sd2.json.configs!.text_encoder as Record<string, number>;
      // The sidecar's num_hidden_layers (23) and the sd2 family default (resblocks − 1) agree.
      const config = detectClipTextConfig(weights, clipTextHintsFromTransformersConfig(teConfig));
      expect(detectClipTextConfig(weights, { family: 'sd2', heads: teConfig.num_attention_heads })).toEqual(config);
      expect(config).toMatchObject({
        layout: 'open_clip',
        hiddenSize: teConfig.hidden_size,
        layers: teConfig.resblocks_in_single_file,
        numHiddenLayers: teConfig.num_hidden_layers,
        intermediateSize: teConfig.intermediate_size,
        activation: 'gelu',
        projectionDim: teConfig.projection_dim,
      });

      const ids = await sd2.tensor(c.inputs.input_ids);
      const rows = ids.shape[0];
      const out = await runEncoder(config, weights, ids.data, rows, { attention });
      expectRel(c.id, 'last_hidden_state', out.last_hidden_state.data, (await sd2.tensor(c.outputs.last_hidden_state)).data, rel);
      expectRel(c.id, 'pooler_output', out.pooler_output.data, (await sd2.tensor(c.outputs.pooler_output)).data, rel);
      expect(Object.keys(out)).toContain(`hidden_states.${config.numHiddenLayers}`);
      expect(Object.keys(out)).not.toContain(`hidden_states.${config.numHiddenLayers + 1}`);

      // hidden_states [25, 2 rows, 77, H]: every resblock of the file, so run all 24 as well.
      const hidden = await sd2.tensor(c.outputs.hidden_states);
      const rowsAll = hidden.shape[1];
      const all = await runEncoder({ ...config, numHiddenLayers: config.layers }, weights, ids.data.subarray(0, rowsAll * ids.shape[1]), rowsAll, { attention });
      expect(hidden.shape[0]).toBe(config.layers + 1);
      for (let i = 0; i <= config.layers; i++) expectRel(c.id, `hidden_states.${i}`, all[`hidden_states.${i}`].data, entry(hidden, i), rel);
    });
  }
});

describe.skipIf(!hasFixture('checkpoints-xl'))('CLIP text encoders vs transformers (sdxl-base, sdxl-refiner)', () => {
  let xl: FixtureFamily;
  let models: Record<string, Record<string, Record<string, unknown>>>;
  beforeAll(async () => {
    xl = await openFixtureFamily('checkpoints-xl');
    opened.push(xl.reference);
    models = xl.json.models as typeof models;
  });

  const encoders = [
    { caseId: 'sdxl.text_encoder', model: 'text_encoder', family: 'sdxl-clip-l', file: 'sdxl-base/sd_xl_base_tiny.safetensors', prefix: 'conditioner.embedders.0.transformer.', layout: 'transformers', projection: null },
    { caseId: 'sdxl.text_encoder', model: 'text_encoder', family: 'sdxl-clip-l', file: 'sdxl-base/diffusers/text_encoder/model.safetensors', prefix: '', layout: 'transformers', projection: null },
    { caseId: 'sdxl.text_encoder_2', model: 'text_encoder_2', family: 'sdxl-clip-g', file: 'sdxl-base/sd_xl_base_tiny.safetensors', prefix: 'conditioner.embedders.1.model.', layout: 'open_clip', projection: 20 },
    { caseId: 'sdxl.text_encoder_2', model: 'text_encoder_2', family: 'sdxl-clip-g', file: 'sdxl-base/diffusers/text_encoder_2/model.safetensors', prefix: '', layout: 'transformers', projection: 20 },
    // The refiner's encoder holds sdxl-base's text_encoder_2 weights (cases.json models).
    { caseId: 'sdxl.text_encoder_2', model: 'text_encoder_2', family: 'sdxl-clip-g', file: 'sdxl-refiner/sd_xl_refiner_tiny.safetensors', prefix: 'conditioner.embedders.0.model.', layout: 'open_clip', projection: 20 },
  ] as const;

  for (const e of encoders) {
    for (const attention of ATTENTION) {
      it(`${e.caseId}, ${e.file}${e.prefix ? ` (${e.prefix}*)` : ''}, ${attention} attention: every output within its atol`, async () => {
        const c = xl.case(e.caseId);
        const perOutput = (c.tolerance as unknown as { per_output: Record<string, { atol: number }> }).per_output;
        const weights = WeightSet.fromFile(await open(path.join(xl.dir, e.file)), e.prefix);
        const teConfig = models['sdxl-base'][e.model];
        const config = detectClipTextConfig(weights, { family: e.family, ...clipTextHintsFromTransformersConfig(teConfig) });
        expect(config).toMatchObject({
          layout: e.layout,
          hiddenSize: teConfig.hidden_size,
          layers: teConfig.num_hidden_layers,
          numHiddenLayers: teConfig.num_hidden_layers,
          intermediateSize: teConfig.intermediate_size,
          heads: teConfig.num_attention_heads,
          activation: teConfig.hidden_act,
          eosTokenId: 49407,
          projectionDim: e.projection,
        });

        const ids = await xl.tensor(c.inputs.input_ids);
        const out = await runEncoder(config, weights, ids.data, ids.shape[0], { attention });
        for (const [name, ref] of Object.entries(c.outputs)) {
          expectAtol(c.id, name, out[name].data, (await xl.tensor(ref)).data, perOutput[ref].atol);
        }
        expect(Object.keys(out).includes('text_embeds')).toBe(e.projection !== null);
      });
    }
  }

  it("sdxl.base_refiner: the refiner's encoder on '' gives the pipeline's uncond encoder_hidden_states row and text_embeds", async () => {
    const c = xl.case('sdxl.base_refiner');
    const weights = WeightSet.fromFile(await open(path.join(xl.dir, 'sdxl-refiner/sd_xl_refiner_tiny.safetensors')), 'conditioner.embedders.0.model.');
    const config = detectClipTextConfig(weights, { family: 'sdxl-clip-g', ...clipTextHintsFromTransformersConfig(models['sdxl-base'].text_encoder_2) });
    // Row 0 is the uncond row: negative prompt None → the refiner encodes '' with tokenizer_2 (bos, eos, pad 0).
    const ids = [49406, 49407, ...new Array(75).fill(0)];
    const out = await runEncoder(config, weights, ids, 1, { attention: 'contrib' });
    const intermediates = c.intermediates as Record<string, string>;
    const hidden = await xl.tensor(intermediates.encoder_hidden_states);
    const pooled = await xl.tensor(intermediates.text_embeds);
    // No per-output atol for these intermediates: use sdxl.text_encoder_2's for the same tensors.
    const te2 = (xl.case('sdxl.text_encoder_2').tolerance as unknown as { per_output: Record<string, { atol: number }> }).per_output;
    expectAtol(c.id, 'encoder_hidden_states[uncond] = hidden_states.2', out['hidden_states.2'].data, entry(hidden, 0), te2['sdxl.te2.hidden_states.2'].atol);
    expectAtol(c.id, 'text_embeds[uncond]', out.text_embeds.data, entry(pooled, 0), te2['sdxl.te2.text_embeds'].atol);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Other configurations: random weights written in both layouts with the same numbers.

interface RandomSpec {
  hidden: number;
  layers: number;
  intermediate: number;
  vocab: number;
  positions: number;
  projection: number | null;
}

/** Deterministic uniform(−scale, scale) values (xorshift32). */
function randomValues(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

/** The model's tensors in transformers names ([out, in] Linears), values deterministic per name. */
function transformersTensors(spec: RandomSpec): Map<string, { shape: number[]; values: Float32Array }> {
  const { hidden: H, intermediate: I } = spec;
  const t = new Map<string, { shape: number[]; values: Float32Array }>();
  let seed = 1;
  const add = (key: string, shape: number[], scale: number, offset = 0) => {
    const values = randomValues(shape.reduce((a, b) => a * b, 1), seed++ * 7919, scale);
    if (offset) for (let i = 0; i < values.length; i++) values[i] += offset;
    t.set(key, { shape, values });
  };
  add('text_model.embeddings.token_embedding.weight', [spec.vocab, H], 1);
  add('text_model.embeddings.position_embedding.weight', [spec.positions, H], 0.5);
  for (let i = 0; i < spec.layers; i++) {
    const p = `text_model.encoder.layers.${i}.`;
    add(`${p}layer_norm1.weight`, [H], 0.2, 1);
    add(`${p}layer_norm1.bias`, [H], 0.1);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      add(`${p}self_attn.${proj}.weight`, [H, H], proj === 'q_proj' || proj === 'k_proj' ? 2 / Math.sqrt(H) : 1 / Math.sqrt(H));
      add(`${p}self_attn.${proj}.bias`, [H], 0.1);
    }
    add(`${p}layer_norm2.weight`, [H], 0.2, 1);
    add(`${p}layer_norm2.bias`, [H], 0.1);
    add(`${p}mlp.fc1.weight`, [I, H], 1 / Math.sqrt(H));
    add(`${p}mlp.fc1.bias`, [I], 0.1);
    add(`${p}mlp.fc2.weight`, [H, I], 1 / Math.sqrt(I));
    add(`${p}mlp.fc2.bias`, [H], 0.1);
  }
  add('text_model.final_layer_norm.weight', [H], 0.2, 1);
  add('text_model.final_layer_norm.bias', [H], 0.1);
  if (spec.projection !== null) add('text_projection.weight', [spec.projection, H], 1 / Math.sqrt(H));
  return t;
}

function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

/** The same numbers in OpenCLIP names (diffusers' `convert_open_clip_checkpoint` run backwards), with a prefix. */
function openClipTensors(spec: RandomSpec, prefix: string): Map<string, { shape: number[]; values: Float32Array }> {
  const hf = transformersTensors(spec);
  const get = (k: string) => hf.get(k)!;
  const H = spec.hidden;
  const t = new Map<string, { shape: number[]; values: Float32Array }>();
  t.set(`${prefix}token_embedding.weight`, get('text_model.embeddings.token_embedding.weight'));
  t.set(`${prefix}positional_embedding`, get('text_model.embeddings.position_embedding.weight'));
  for (let i = 0; i < spec.layers; i++) {
    const a = `text_model.encoder.layers.${i}.`;
    const b = `${prefix}transformer.resblocks.${i}.`;
    t.set(`${b}ln_1.weight`, get(`${a}layer_norm1.weight`));
    t.set(`${b}ln_1.bias`, get(`${a}layer_norm1.bias`));
    const qkv = ['q_proj', 'k_proj', 'v_proj'];
    const inW = new Float32Array(3 * H * H);
    const inB = new Float32Array(3 * H);
    qkv.forEach((p, j) => {
      inW.set(get(`${a}self_attn.${p}.weight`).values, j * H * H);
      inB.set(get(`${a}self_attn.${p}.bias`).values, j * H);
    });
    t.set(`${b}attn.in_proj_weight`, { shape: [3 * H, H], values: inW });
    t.set(`${b}attn.in_proj_bias`, { shape: [3 * H], values: inB });
    t.set(`${b}attn.out_proj.weight`, get(`${a}self_attn.out_proj.weight`));
    t.set(`${b}attn.out_proj.bias`, get(`${a}self_attn.out_proj.bias`));
    t.set(`${b}ln_2.weight`, get(`${a}layer_norm2.weight`));
    t.set(`${b}ln_2.bias`, get(`${a}layer_norm2.bias`));
    t.set(`${b}mlp.c_fc.weight`, get(`${a}mlp.fc1.weight`));
    t.set(`${b}mlp.c_fc.bias`, get(`${a}mlp.fc1.bias`));
    t.set(`${b}mlp.c_proj.weight`, get(`${a}mlp.fc2.weight`));
    t.set(`${b}mlp.c_proj.bias`, get(`${a}mlp.fc2.bias`));
  }
  t.set(`${prefix}ln_final.weight`, get('text_model.final_layer_norm.weight'));
  t.set(`${prefix}ln_final.bias`, get('text_model.final_layer_norm.bias'));
  if (spec.projection !== null) {
    t.set(`${prefix}text_projection`, { shape: [H, spec.projection], values: transpose(get('text_projection.weight').values, spec.projection, H) });
  }
  t.set(`${prefix}logit_scale`, { shape: [], values: Float32Array.of(4.6) });
  return t;
}

async function writeModel(name: string, tensors: Map<string, { shape: number[]; values: Float32Array }>): Promise<TensorFile> {
  const file = path.join(work, name);
  const list: TensorToWrite[] = [...tensors].map(([key, { shape, values }]) => ({ key, dtype: 'F32', shape, values: () => values }));
  await writeSafetensors(file, list);
  return open(file);
}

describe('CLIP text encoder: detection and graphs of other configurations', () => {
  // H = 48 with 3 heads of 16 (a hint), 2 layers, MLP 80, 300 tokens, 20 positions, projection 48 → 24.
  const spec: RandomSpec = { hidden: 48, layers: 2, intermediate: 80, vocab: 300, positions: 20, projection: 24 };
  const hints: ClipTextHints = { heads: 3, activation: 'gelu', eosTokenId: 299 };
  const prefix = 'conditioner.embedders.1.model.';
  let hf: WeightSet;
  let oc: WeightSet;
  beforeAll(async () => {
    hf = WeightSet.fromFile(await writeModel('other-hf.safetensors', transformersTensors(spec)));
    oc = WeightSet.fromFile(await writeModel('other-openclip.safetensors', openClipTensors(spec, prefix)), prefix);
  });

  // Rows: eos in the middle, eos twice (pool at the first), no eos (pool at position 0, as transformers).
  const T = 12;
  const ids = [
    [298, 5, 17, 42, 299, 0, 0, 0, 0, 0, 0, 0],
    [298, 7, 299, 8, 299, 299, 299, 299, 299, 299, 299, 299],
    [298, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
  ];
  const firstEos = [4, 2, 0];

  it('detects every shape from the tensors and the hints in both layouts', () => {
    const expected: ClipTextConfig = {
      layout: 'transformers',
      hiddenSize: 48,
      layers: 2,
      numHiddenLayers: 2,
      intermediateSize: 80,
      vocabSize: 300,
      maxPositions: 20,
      heads: 3,
      headDim: 16,
      activation: 'gelu',
      layerNormEps: 1e-5,
      eosTokenId: 299,
      projectionDim: 24,
    };
    expect(detectClipTextConfig(hf, hints)).toEqual(expected);
    expect(detectClipTextConfig(oc, hints)).toEqual({ ...expected, layout: 'open_clip' });
    // Defaults: heads = hidden/64 needs a multiple of 64; activation by layout; family sd2 drops a layer.
    expect(() => detectClipTextConfig(hf, { eosTokenId: 299 })).toThrow(/48 is not a multiple of 64.*heads hint/);
    const some = { heads: 3, eosTokenId: 299 };
    expect(detectClipTextConfig(hf, some).activation).toBe('quick_gelu');
    expect(detectClipTextConfig(oc, some).activation).toBe('gelu');
    expect(detectClipTextConfig(oc, { ...some, family: 'sd2' })).toMatchObject({ numHiddenLayers: 1, activation: 'gelu' });
    expect(detectClipTextConfig(hf, { ...some, family: 'sdxl-clip-g' }).activation).toBe('gelu');
  });

  it('builds graphs of the right shapes; both layouts and both attention kinds compute the same, causally, pooling at the first eos', async () => {
    const flat = ids.flat();
    const B = ids.length;
    const results: Fetches[] = [];
    for (const weights of [hf, oc]) {
      for (const attention of ATTENTION) results.push(await runEncoder(detectClipTextConfig(weights, hints), weights, flat, B, { attention }));
    }
    const [base] = results;
    expect(Object.keys(base).sort()).toEqual(['hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'last_hidden_state', 'pooler_output', 'text_embeds']);
    expect(base.last_hidden_state.dims).toEqual([B, T, 48]);
    expect(base['hidden_states.2'].dims).toEqual([B, T, 48]);
    expect(base.pooler_output.dims).toEqual([B, 48]);
    expect(base.text_embeds.dims).toEqual([B, 24]);
    for (const r of results.slice(1)) {
      for (const name of Object.keys(base)) expect(normwiseRelError(r[name].data, base[name].data), name).toBeLessThan(1e-5);
    }
    for (let b = 0; b < B; b++) {
      const at = (b * T + firstEos[b]) * 48;
      expect(Array.from(base.pooler_output.data.subarray(b * 48, (b + 1) * 48))).toEqual(Array.from(base.last_hidden_state.data.subarray(at, at + 48)));
    }
    // Causal: changing the last token leaves every earlier position unchanged, and changes the last one.
    const changed = ids.map((row) => [...row.slice(0, T - 1), 150]).flat();
    const after = await runEncoder(detectClipTextConfig(hf, hints), hf, changed, B, { attention: 'contrib' });
    for (let b = 0; b < B; b++) {
      const before = base.last_hidden_state.data.subarray(b * T * 48, (b * T + T - 1) * 48);
      expect(normwiseRelError(after.last_hidden_state.data.subarray(b * T * 48, (b * T + T - 1) * 48), before)).toBeLessThan(1e-6);
      const lastBefore = base.last_hidden_state.data.subarray((b * T + T - 1) * 48, (b + 1) * T * 48);
      expect(normwiseRelError(after.last_hidden_state.data.subarray((b * T + T - 1) * 48, (b + 1) * T * 48), lastBefore)).toBeGreaterThan(1e-2);
    }
  });

  it('a float16 graph builds and runs on the CPU provider (onnxruntime casts around its float32-only kernels) within float16 accuracy', async () => {
    const config = detectClipTextConfig(hf, hints);
    const f32 = await runEncoder(config, hf, ids.flat(), ids.length, { attention: 'standard' });
    for (const attention of ATTENTION) {
      const f16 = await runEncoder(config, hf, ids.flat(), ids.length, { attention, floatType: 'float16' });
      for (const name of Object.keys(f32)) expect(normwiseRelError(f16[name].data, f32[name].data), `${attention} ${name}`).toBeLessThan(1e-2);
    }
  });

  describe('broken tensors are refused with a reason', () => {
    const variant = async (name: string, edit: (t: Map<string, { shape: number[]; values: Float32Array }>) => void, pre = prefix) => {
      const t = openClipTensors(spec, pre);
      edit(t);
      return WeightSet.fromFile(await writeModel(name, t), pre);
    };

    it('a missing tensor names it', async () => {
      const w = await variant('missing.safetensors', (t) => t.delete(`${prefix}transformer.resblocks.1.mlp.c_proj.bias`));
      expect(() => detectClipTextConfig(w, hints)).toThrow(MissingWeightError);
      expect(() => detectClipTextConfig(w, hints)).toThrow(/no tensor "transformer\.resblocks\.1\.mlp\.c_proj\.bias"/);
    });

    it('a layer gap is a missing tensor', async () => {
      const w = WeightSet.mapped(
        oc.ref('token_embedding.weight').file,
        (k) => (k.startsWith(`${prefix}transformer.resblocks.0.`) ? undefined : k.startsWith(prefix) ? k.slice(prefix.length) : undefined),
        'gap',
      );
      expect(() => detectClipTextConfig(w, hints)).toThrow(/gap has no tensor "transformer\.resblocks\.0\./);
    });

    it('a wrong shape names the tensor, its shape and the one the architecture needs', async () => {
      const w = await variant('shape.safetensors', (t) => t.set(`${prefix}positional_embedding`, { shape: [20, 47], values: new Float32Array(20 * 47) }));
      expect(() => detectClipTextConfig(w, hints)).toThrow(WeightShapeError);
      expect(() => detectClipTextConfig(w, hints)).toThrow(/"positional_embedding" has shape \[20, 47\], the architecture needs \[-1, 48\]/);
    });

    it('a transposed OpenCLIP projection ([P, H] instead of [H, P]) is a wrong shape', async () => {
      const w = await variant('proj.safetensors', (t) => t.set(`${prefix}text_projection`, { shape: [24, 48], values: new Float32Array(24 * 48) }));
      expect(() => detectClipTextConfig(w, hints)).toThrow(/"text_projection" has shape \[24, 48\], the architecture needs \[48, -1\]/);
    });

    it('tensors outside the architecture, other networks and contradicting hints are refused', async () => {
      const extra = await variant('extra.safetensors', (t) => t.set(`${prefix}transformer.resblocks.0.ls_1.gamma`, { shape: [48], values: new Float32Array(48) }));
      expect(() => detectClipTextConfig(extra, hints)).toThrow(ClipTextConfigError);
      expect(() => detectClipTextConfig(extra, hints)).toThrow(/does not have: transformer\.resblocks\.0\.ls_1\.gamma/);
      const unet = WeightSet.fromFile(oc.ref('token_embedding.weight').file, 'model.diffusion_model.');
      expect(() => detectClipTextConfig(unet, hints)).toThrow(/is not a CLIP text encoder/);
      expect(() => detectClipTextConfig(oc, { ...hints, heads: 5 })).toThrow(/heads hint 5 does not divide the hidden size 48/);
      expect(() => detectClipTextConfig(oc, { ...hints, numHiddenLayers: 3 })).toThrow(/numHiddenLayers 3 must be an integer from 1 to the 2 layers/);
      expect(() => detectClipTextConfig(oc, { ...hints, eosTokenId: 49407 })).toThrow(/eosTokenId 49407 is outside the vocabulary of 300/);
      expect(() => clipTextHintsFromTransformersConfig({ hidden_act: 'gelu_new' })).toThrow(/hidden_act "gelu_new"/);
    });
  });
});
