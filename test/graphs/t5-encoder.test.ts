/**
 * T5 encoder graphs built from checkpoint tensors (checkpoints/detect/t5-config.ts + graphs/t5-encoder.ts), run on
 * onnxruntime's CPU provider against transformers' T5EncoderModel outputs for the tiny FLUX.1 / SD 3.5 fixtures
 * (../shared/fixtures/checkpoints-dit), with both attention kinds and in the standalone (ComfyUI t5xxl) layout; plus
 * another configuration (ungated relu FF, inner width ≠ d_model, few buckets and a short max distance) checked
 * against a float64 JavaScript forward written from transformers' modeling_t5.py, the padding mask, the refusals,
 * and a float16 graph on the CPU provider.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  T5ConfigError,
  detectT5EncoderConfig,
  t5HintsFromTransformersConfig,
  type T5EncoderConfig,
  type T5EncoderHints,
} from '../../gpu-service/src/checkpoints/detect/t5-config';
import { t5EncoderKeyMap } from '../../gpu-service/src/checkpoints/key-maps/t5-encoder';
import { loadT5Tokenizer } from '../../gpu-service/src/diffusion/tokenizer/t5-tokenizer';
import type { AttentionKind } from '../../gpu-service/src/graphs/layers';
import { buildT5Encoder, relativePositionBucket, relativePositionBucketTable, type T5EncoderGraphOptions } from '../../gpu-service/src/graphs/t5-encoder';
import { OnnxModel, type Fetches } from '../../gpu-service/src/onnx/session';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { writeSafetensors, type TensorToWrite } from '../../gpu-service/src/weights/safetensors-writer';
import type { TensorFile } from '../../gpu-service/src/weights/tensor-file';
import { MissingWeightError, WeightSet, WeightShapeError } from '../../gpu-service/src/weights/weight-set';
import { expectWithinAtol, hasFixture, maxAbsError, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';

const ATTENTION: AttentionKind[] = ['contrib', 'standard'];

let work: string;
const opened: TensorFile[] = [];
/** Worst max|diff| per case and graph kind, printed at the end for the report. */
const worst = new Map<string, number>();

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 't5-encoder-'));
});
afterAll(async () => {
  await Promise.all(opened.map((f) => f.close()));
  await rm(work, { recursive: true, force: true });
  if (worst.size) console.log(`T5 encoder worst max|diff|: ${[...worst].map(([k, v]) => `${k} ${v.toExponential(2)}`).join('; ')}`);
});

function note(key: string, value: number): void {
  worst.set(key, Math.max(worst.get(key) ?? 0, value));
}

async function open(file: string): Promise<TensorFile> {
  const f = await openSafetensors(file);
  opened.push(f);
  return f;
}

/** Build, save and run the graph on `ids` [rows, T] (and `mask` when given); every output as float32. */
async function runEncoder(config: T5EncoderConfig, weights: WeightSet, ids: ArrayLike<number>, rows: number, opts: T5EncoderGraphOptions, mask?: number[]): Promise<Fetches> {
  const dir = await mkdtemp(path.join(work, 'graph-'));
  const { modelPath } = await buildT5Encoder(config, weights, opts).save(dir);
  const model = await OnnxModel.open(modelPath);
  try {
    const dims = [rows, ids.length / rows];
    return await model.run({ input_ids: { data: ids, dims }, ...(mask ? { attention_mask: { data: mask, dims } } : {}) });
  } finally {
    await model.release();
  }
}

describe('relative position buckets (transformers T5Attention._relative_position_bucket, bidirectional)', () => {
  it('T5 v1.1 (32 buckets, max distance 128): exact near, log-spaced far, 16 per direction, positive offset by 16', () => {
    // |p| < 8 exact; 8 + ⌊2·log2(|p|/8)⌋ below 128, at most 15 (from 91 on; the boundaries at 16, 32, 64 are exact in float32).
    const expected: Array<[number, number]> = [
      [0, 0], [-1, 1], [1, 17], [-7, 7], [7, 23], [-8, 8], [8, 24], [-11, 8], [-12, 9], [-15, 9], [-16, 10], [16, 26],
      [-31, 11], [-32, 12], [32, 28], [-45, 12], [-46, 13], [-63, 13], [-64, 14], [-90, 14], [-91, 15], [-127, 15], [-128, 15], [128, 31], [-1000, 15], [1000, 31],
    ];
    for (const [p, bucket] of expected) expect(relativePositionBucket(p, 32, 128), `position ${p}`).toBe(bucket);
    const table = relativePositionBucketTable(32, 128);
    expect(table).toHaveLength(257);
    expect(table[0]).toBe(15);
    expect(table[128]).toBe(0);
    expect(table[256]).toBe(31);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Upstream fixtures.

interface T5Case {
  family: string;
  caseId: string;
  component: string;
}
const CASES: T5Case[] = [
  { family: 'flux-schnell', caseId: 'flux.text_encoder_2', component: 'diffusers/text_encoder_2' },
  { family: 'sd3.5', caseId: 'sd35.text_encoder_3', component: 'diffusers/text_encoder_3' },
];

describe.skipIf(!hasFixture('checkpoints-dit'))('T5 encoder vs transformers T5EncoderModel (checkpoints-dit)', () => {
  const families = new Map<string, FixtureFamily>();
  beforeAll(async () => {
    for (const c of CASES) {
      const fam = await openFixtureFamily(`checkpoints-dit/${c.family}`);
      opened.push(fam.reference);
      families.set(c.family, fam);
    }
  });

  async function caseData(c: T5Case) {
    const fam = families.get(c.family)!;
    const fc = fam.case(c.caseId);
    const dir = path.join(fam.dir, c.component);
    const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const file = await open(path.join(dir, 'model.safetensors'));
    const keys = [...file.entries.keys()];
    const weights = WeightSet.mapped(file, t5EncoderKeyMap(keys), `${c.family}/${c.component}`);
    const ids = await fam.tensor(fc.inputs.input_ids);
    const expected = await fam.tensor(fc.outputs.last_hidden_state);
    return { fam, fc, config, file, weights, ids, expected, atol: fc.tolerance.atol! };
  }

  for (const c of CASES) {
    it(`${c.caseId}: detection matches config.json; the case's listed ids are the reference input`, async () => {
      const { fc, config, weights, ids } = await caseData(c);
      const detected = detectT5EncoderConfig(weights, t5HintsFromTransformersConfig(config));
      expect(detected).toEqual({
        dModel: config.d_model,
        dKv: config.d_kv,
        numHeads: config.num_heads,
        innerDim: (config.d_kv as number) * (config.num_heads as number),
        dFf: config.d_ff,
        numLayers: config.num_layers,
        vocabSize: config.vocab_size,
        relativeAttentionNumBuckets: config.relative_attention_num_buckets,
        relativeAttentionMaxDistance: config.relative_attention_max_distance,
        layerNormEpsilon: config.layer_norm_epsilon,
        isGatedAct: config.is_gated_act,
        denseActFn: config.dense_act_fn,
      });
      // Without hints the tensors and T5 v1.1's defaults give the same configuration.
      expect(detectT5EncoderConfig(weights)).toEqual(detected);
      expect(ids.shape).toEqual([(fc.input_ids as number[][]).length, (fc.input_ids as number[][])[0].length]);
      expect(Array.from(ids.data)).toEqual((fc.input_ids as number[][]).flat());
    });

    for (const attention of ATTENTION) {
      it(`${c.caseId}, ${attention} attention: last_hidden_state within the case's atol`, async () => {
        const { weights, ids, expected, atol } = await caseData(c);
        const config = detectT5EncoderConfig(weights);
        const out = await runEncoder(config, weights, ids.data, ids.shape[0], { attention });
        expect(out.last_hidden_state.dims).toEqual([...ids.shape, config.dModel]);
        expect(expected.shape).toEqual([...ids.shape, config.dModel]);
        note(`${c.caseId} ${attention}`, expectWithinAtol(`${c.caseId} ${attention} last_hidden_state`, out.last_hidden_state.data, expected.data, atol));
      });
    }

    it(`${c.caseId}: an all-ones attention_mask changes nothing`, async () => {
      const { weights, ids, expected, atol } = await caseData(c);
      const config = detectT5EncoderConfig(weights);
      const ones = new Array(ids.data.length).fill(1);
      const out = await runEncoder(config, weights, ids.data, ids.shape[0], { attention: 'contrib', attentionMask: true }, ones);
      note(`${c.caseId} contrib+mask`, expectWithinAtol(`${c.caseId} masked graph`, out.last_hidden_state.data, expected.data, atol));
    });

    it(`${c.caseId}: a float16 graph runs on the CPU provider within float16 accuracy (both attention kinds)`, async () => {
      const { weights, ids, expected } = await caseData(c);
      const config = detectT5EncoderConfig(weights);
      let maxRef = 0;
      for (const v of expected.data) maxRef = Math.max(maxRef, Math.abs(v));
      for (const attention of ATTENTION) {
        const out = await runEncoder(config, weights, ids.data, ids.shape[0], { attention, floatType: 'float16' });
        const err = maxAbsError(out.last_hidden_state.data, expected.data);
        note(`${c.caseId} float16 ${attention}`, err);
        // float16 keeps 11 significant bits: a few units of 2^-11 relative to the largest value.
        expect(err, `${attention}: float16 max|diff| ${err}`).toBeLessThan(maxRef * 1e-2);
      }
    });
  }

  it("prompt text → T5Tokenizer → graph: the pipelines' T5 embeddings (encode_prompt, txt2img; SD 3.5: rows after the 77 CLIP rows)", async () => {
    const prompts = (fam: FixtureFamily, id: string, field: string) => fam.case(id)[field] as string[];
    const checks: Array<{ c: T5Case; rows: Array<{ text: string; tensor: string; row: number; atol: number }>; length: number; skipRows: number }> = [];
    const flux = families.get('flux-schnell')!;
    const fluxEncode = flux.case('flux.encode_prompt');
    const fluxTxt = flux.case('flux.txt2img');
    checks.push({
      c: CASES[0],
      length: fluxEncode.max_sequence_length as number,
      skipRows: 0,
      rows: [
        ...prompts(flux, 'flux.encode_prompt', 'prompts').map((text, row) => ({ text, tensor: fluxEncode.outputs.prompt_embeds, row, atol: fluxEncode.tolerance.per_output!.prompt_embeds.atol! })),
        // No per-output atol for this intermediate: flux.text_encoder_2's, for the same tensor.
        { text: fluxTxt.prompt as string, tensor: (fluxTxt.intermediates as Record<string, string>).encoder_hidden_states, row: 0, atol: flux.case('flux.text_encoder_2').tolerance.atol! },
      ],
    });
    const sd = families.get('sd3.5')!;
    const sdEncode = sd.case('sd35.encode_prompt');
    const sdTxt = sd.case('sd35.txt2img');
    const per = sdEncode.tolerance.per_output!;
    checks.push({
      c: CASES[1],
      length: sdEncode.max_sequence_length as number,
      skipRows: 77,
      rows: [
        ...prompts(sd, 'sd35.encode_prompt', 'prompts').map((text, row) => ({ text, tensor: sdEncode.outputs.prompt_embeds, row, atol: per.prompt_embeds.atol! })),
        ...prompts(sd, 'sd35.encode_prompt', 'negative_prompts').map((text, row) => ({ text, tensor: sdEncode.outputs.negative_prompt_embeds, row, atol: per.negative_prompt_embeds.atol! })),
        // CFG batch [uncond, cond]; no per-output atol: sd35.text_encoder_3's.
        ...[sdTxt.negative_prompt as string, sdTxt.prompt as string].map((text, row) => ({ text, tensor: (sdTxt.intermediates as Record<string, string>).encoder_hidden_states, row, atol: sd.case('sd35.text_encoder_3').tolerance.atol! })),
      ],
    });
    for (const { c, rows, length, skipRows } of checks) {
      const fam = families.get(c.family)!;
      const tokenizer = await loadT5Tokenizer(path.join(fam.dir, c.component.replace('text_encoder', 'tokenizer')));
      const { weights } = await caseData(c);
      const ids = rows.flatMap((r) => tokenizer.encodeForModel(r.text, length));
      const out = await runEncoder(detectT5EncoderConfig(weights), weights, ids, rows.length, { attention: 'contrib' });
      for (const [b, r] of rows.entries()) {
        const ref = await fam.tensor(r.tensor);
        const [, seq, width] = ref.shape;
        expect(seq).toBe(skipRows + length);
        const expected = ref.data.subarray((r.row * seq + skipRows) * width, (r.row + 1) * seq * width);
        const actual = out.last_hidden_state.data.subarray(b * length * width, (b + 1) * length * width);
        note(`${c.family} prompt → embeddings`, expectWithinAtol(`${r.tensor}[${r.row}] (${JSON.stringify(r.text)})`, actual, expected, r.atol));
      }
    }
  });

  it('the ComfyUI / A1111 standalone layout (table as encoder.embed_tokens.weight, under a prefix) reads the same weights', async () => {
    const { file, ids, expected, atol } = await caseData(CASES[0]);
    const prefix = 'text_encoders.t5xxl.transformer.';
    const tensors: TensorToWrite[] = [];
    for (const e of file.entries.values()) {
      const key = e.key === 'shared.weight' ? 'encoder.embed_tokens.weight' : e.key;
      const values = await file.readFloat32(e.key);
      tensors.push({ key: prefix + key, dtype: 'F16', shape: e.shape, values: () => values });
    }
    tensors.push({ key: 'model.diffusion_model.x.weight', dtype: 'F32', shape: [1], values: () => Float32Array.of(1) });
    const out = path.join(work, 't5xxl-standalone.safetensors');
    await writeSafetensors(out, tensors);
    const standalone = await open(out);
    const keys = [...standalone.entries.keys()];
    const weights = WeightSet.mapped(standalone, t5EncoderKeyMap(keys, prefix), 'standalone');
    expect(weights.has('shared.weight')).toBe(true);
    expect(weights.has('encoder.embed_tokens.weight')).toBe(false);
    expect(() => detectT5EncoderConfig(WeightSet.fromFile(standalone, prefix, 'unmapped'))).toThrow(/unmapped: the token embedding is stored as "encoder\.embed_tokens\.weight"; read the file through t5EncoderKeyMap/);
    // Both names (tied) in one set: detection accepts the duplicate table of the same shape.
    const tied = weights.with(new Map([['encoder.embed_tokens.weight', weights.ref('shared.weight')]]));
    expect(detectT5EncoderConfig(tied)).toEqual(detectT5EncoderConfig(weights));
    const config = detectT5EncoderConfig(weights);
    const result = await runEncoder(config, weights, ids.data, ids.shape[0], { attention: 'standard' });
    expectWithinAtol('standalone layout', result.last_hidden_state.data, expected.data, atol);
    // Both keys present (tied): the table is read once, as shared.weight.
    const both = t5EncoderKeyMap([prefix + 'shared.weight', prefix + 'encoder.embed_tokens.weight'], prefix);
    expect(both(prefix + 'encoder.embed_tokens.weight')).toBeUndefined();
    expect(both(prefix + 'shared.weight')).toBe('shared.weight');
    expect(both(prefix + 'decoder.block.0.layer.0.SelfAttention.q.weight')).toBeUndefined();
    expect(both('lm_head.weight')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------
// Another configuration: random weights, checked against a float64 forward of transformers' arithmetic.

interface RandomSpec {
  dModel: number;
  heads: number;
  dKv: number;
  dFf: number;
  layers: number;
  vocab: number;
  buckets: number;
  gated: boolean;
}

type Tensors = Map<string, { shape: number[]; values: Float32Array }>;

/** Deterministic uniform(−scale, scale) values (xorshift32). */
function randomValues(n: number, seed: number, scale: number, offset = 0): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale + offset;
  }
  return out;
}

function randomT5(spec: RandomSpec): Tensors {
  const t: Tensors = new Map();
  let seed = 11;
  const add = (key: string, shape: number[], scale: number, offset = 0) =>
    t.set(key, { shape, values: randomValues(shape.reduce((a, b) => a * b, 1), seed++ * 7919, scale, offset) });
  const inner = spec.heads * spec.dKv;
  add('shared.weight', [spec.vocab, spec.dModel], 1);
  for (let i = 0; i < spec.layers; i++) {
    const p = `encoder.block.${i}.layer.`;
    add(`${p}0.layer_norm.weight`, [spec.dModel], 0.2, 1);
    for (const m of ['q', 'k', 'v']) add(`${p}0.SelfAttention.${m}.weight`, [inner, spec.dModel], 1 / Math.sqrt(spec.dModel));
    add(`${p}0.SelfAttention.o.weight`, [spec.dModel, inner], 1 / Math.sqrt(inner));
    if (i === 0) add(`${p}0.SelfAttention.relative_attention_bias.weight`, [spec.buckets, spec.heads], 1);
    add(`${p}1.layer_norm.weight`, [spec.dModel], 0.2, 1);
    if (spec.gated) {
      add(`${p}1.DenseReluDense.wi_0.weight`, [spec.dFf, spec.dModel], 1 / Math.sqrt(spec.dModel));
      add(`${p}1.DenseReluDense.wi_1.weight`, [spec.dFf, spec.dModel], 1 / Math.sqrt(spec.dModel));
    } else {
      add(`${p}1.DenseReluDense.wi.weight`, [spec.dFf, spec.dModel], 1 / Math.sqrt(spec.dModel));
    }
    add(`${p}1.DenseReluDense.wo.weight`, [spec.dModel, spec.dFf], 1 / Math.sqrt(spec.dFf));
  }
  add('encoder.final_layer_norm.weight', [spec.dModel], 0.2, 1);
  return t;
}

async function writeModel(name: string, tensors: Tensors): Promise<TensorFile> {
  const file = path.join(work, name);
  await writeSafetensors(file, [...tensors].map(([key, { shape, values }]) => ({ key, dtype: 'F32', shape, values: () => values })));
  return open(file);
}

/**
 * transformers' T5 encoder forward (modeling_t5.py) in float64, for one row of ids, relu or gelu_new; buckets from
 * the float64 formula (no float32 rounding), the mask as finfo.min added to padding keys' scores.
 */
function referenceForward(t: Tensors, c: T5EncoderConfig, ids: number[], mask?: number[]): Float64Array {
  const T = ids.length;
  const D = c.dModel;
  const get = (k: string) => t.get(k)!.values;
  const matvecT = (w: Float32Array, x: Float64Array, rows: number, cols: number) => {
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += w[r * cols + k] * x[k];
      y[r] = s;
    }
    return y;
  };
  const rms = (x: Float64Array, w: Float32Array) => {
    let ms = 0;
    for (const v of x) ms += v * v;
    const inv = 1 / Math.sqrt(ms / x.length + c.layerNormEpsilon);
    return Float64Array.from(x, (v, i) => v * inv * w[i]);
  };
  const act = (v: number) => (c.denseActFn === 'relu' ? Math.max(0, v) : 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
  const bucket = (p: number) => {
    const n = c.relativeAttentionNumBuckets / 2;
    const exact = n / 2;
    const off = p > 0 ? n : 0;
    const a = Math.abs(p);
    if (a < exact) return off + a;
    return off + Math.min(exact + Math.trunc((Math.log(a / exact) / Math.log(c.relativeAttentionMaxDistance / exact)) * (n - exact)), n - 1);
  };
  let x = ids.map((id) => Float64Array.from(get('shared.weight').subarray(id * D, (id + 1) * D)));
  const biasTable = get('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight');
  for (let l = 0; l < c.numLayers; l++) {
    const p = `encoder.block.${l}.layer.`;
    const n = x.map((row) => rms(row, get(`${p}0.layer_norm.weight`)));
    const [q, k, v] = ['q', 'k', 'v'].map((m) => n.map((row) => matvecT(get(`${p}0.SelfAttention.${m}.weight`), row, c.innerDim, D)));
    const attended = x.map(() => new Float64Array(c.innerDim));
    for (let h = 0; h < c.numHeads; h++) {
      for (let i = 0; i < T; i++) {
        const scores = new Float64Array(T);
        for (let j = 0; j < T; j++) {
          let s = 0;
          for (let d = 0; d < c.dKv; d++) s += q[i][h * c.dKv + d] * k[j][h * c.dKv + d];
          scores[j] = s + biasTable[bucket(j - i) * c.numHeads + h] + (mask && mask[j] === 0 ? -3.4028234663852886e38 : 0);
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j < T; j++) for (let d = 0; d < c.dKv; d++) attended[i][h * c.dKv + d] += (e[j] / sum) * v[j][h * c.dKv + d];
      }
    }
    x = x.map((row, i) => {
      const o = matvecT(get(`${p}0.SelfAttention.o.weight`), attended[i], D, c.innerDim);
      return Float64Array.from(row, (r, d) => r + o[d]);
    });
    x = x.map((row) => {
      const h = rms(row, get(`${p}1.layer_norm.weight`));
      const hidden = c.isGatedAct
        ? (() => {
            const g0 = matvecT(get(`${p}1.DenseReluDense.wi_0.weight`), h, c.dFf, D);
            const g1 = matvecT(get(`${p}1.DenseReluDense.wi_1.weight`), h, c.dFf, D);
            return g0.map((g, i) => act(g) * g1[i]);
          })()
        : matvecT(get(`${p}1.DenseReluDense.wi.weight`), h, c.dFf, D).map(act);
      const y = matvecT(get(`${p}1.DenseReluDense.wo.weight`), hidden, D, c.dFf);
      return Float64Array.from(row, (r, d) => r + y[d]);
    });
  }
  const out = new Float64Array(T * D);
  x.forEach((row, i) => out.set(rms(row, get('encoder.final_layer_norm.weight')), i * D));
  return out;
}

describe('T5 encoder: detection and graphs of another configuration', () => {
  // d_model 40, 5 heads × 12 (inner 60 ≠ d_model), ungated relu FF of 72, 3 layers, 50 tokens, 8 buckets; max distance
  // 6 (hint) so that a 14-token row has relative positions beyond it.
  const spec: RandomSpec = { dModel: 40, heads: 5, dKv: 12, dFf: 72, layers: 3, vocab: 50, buckets: 8, gated: false };
  const hints: T5EncoderHints = { relativeAttentionMaxDistance: 6, denseActFn: 'relu', layerNormEpsilon: 1e-5 };
  let tensors: Tensors;
  let weights: WeightSet;
  beforeAll(async () => {
    tensors = randomT5(spec);
    weights = WeightSet.fromFile(await writeModel('other.safetensors', tensors));
  });

  const T = 14;
  const rows = [
    [3, 17, 42, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [49, 2, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 1],
  ];

  it('detects every shape from the tensors and the hints', () => {
    const config = detectT5EncoderConfig(weights, hints);
    expect(config).toEqual({
      dModel: 40,
      dKv: 12,
      numHeads: 5,
      innerDim: 60,
      dFf: 72,
      numLayers: 3,
      vocabSize: 50,
      relativeAttentionNumBuckets: 8,
      relativeAttentionMaxDistance: 6,
      layerNormEpsilon: 1e-5,
      isGatedAct: false,
      denseActFn: 'relu',
    });
    expect(detectT5EncoderConfig(weights, { ...hints, numHeads: 5 })).toEqual(config);
    expect(t5HintsFromTransformersConfig({ feed_forward_proj: 'relu', num_heads: 5 })).toEqual({ denseActFn: 'relu', numHeads: 5 });
    expect(t5HintsFromTransformersConfig({ feed_forward_proj: 'gated-gelu' })).toEqual({ denseActFn: 'gelu_new' });
    expect(t5HintsFromTransformersConfig({ dense_act_fn: 'gelu_pytorch_tanh', feed_forward_proj: 'gated-gelu' })).toEqual({ denseActFn: 'gelu_new' });
  });

  for (const attention of ATTENTION) {
    it(`${attention} attention: [batch, sequence, d_model] equal to transformers' arithmetic in float64`, async () => {
      const config = detectT5EncoderConfig(weights, hints);
      const out = await runEncoder(config, weights, rows.flat(), rows.length, { attention });
      expect(out.last_hidden_state.dims).toEqual([rows.length, T, spec.dModel]);
      const expected = new Float64Array(rows.length * T * spec.dModel);
      rows.forEach((r, b) => expected.set(referenceForward(tensors, config, r), b * T * spec.dModel));
      note(`other config ${attention} vs float64`, expectWithinAtol(`other config ${attention}`, out.last_hidden_state.data, expected, 2e-5));
    });
  }

  it('a gated gelu_new variant agrees with the float64 forward too', async () => {
    const gatedSpec = { ...spec, gated: true, layers: 2 };
    const gated = randomT5(gatedSpec);
    const w = WeightSet.fromFile(await writeModel('other-gated.safetensors', gated));
    const config = detectT5EncoderConfig(w, { relativeAttentionMaxDistance: 6 });
    expect(config).toMatchObject({ isGatedAct: true, denseActFn: 'gelu_new', numLayers: 2, dFf: 72 });
    const out = await runEncoder(config, w, rows.flat(), rows.length, { attention: 'contrib' });
    const expected = new Float64Array(rows.length * T * spec.dModel);
    rows.forEach((r, b) => expected.set(referenceForward(gated, config, r), b * T * spec.dModel));
    note('other gated vs float64', expectWithinAtol('other gated', out.last_hidden_state.data, expected, 2e-5));
  });

  for (const attention of ATTENTION) {
    it(`${attention} attention: with attention_mask, padding keys are ignored (the tokens' outputs equal those of the unpadded row)`, async () => {
      const config = detectT5EncoderConfig(weights, hints);
      const tokens = [3, 17, 42, 8, 9, 21, 1];
      const padded = [...tokens, 0, 0, 0, 0, 0, 0, 0];
      const mask = padded.map((_, i) => (i < tokens.length ? 1 : 0));
      const masked = await runEncoder(config, weights, padded, 1, { attention, attentionMask: true }, mask);
      const short = await runEncoder(config, weights, tokens, 1, { attention });
      const n = tokens.length * spec.dModel;
      expect(maxAbsError(masked.last_hidden_state.data.subarray(0, n), short.last_hidden_state.data)).toBeLessThan(1e-5);
      expect(maxAbsError(masked.last_hidden_state.data, referenceForward(tensors, config, padded, mask))).toBeLessThan(2e-5);
      // Without the mask the pads are attended (the FLUX / SD 3 convention), which changes the tokens' outputs.
      const unmasked = await runEncoder(config, weights, padded, 1, { attention });
      expect(maxAbsError(unmasked.last_hidden_state.data.subarray(0, n), short.last_hidden_state.data)).toBeGreaterThan(1e-3);
    });
  }

  it('a float16 graph stays finite where the residual stream leaves float16 range (it keeps the residual, the FF activation and wo in float32)', async () => {
    // wo scaled so that the feed-forward adds ~1e6 per block: beyond float16's 65504, as T5 v1.1 XXL's activations do.
    const big = randomT5(spec);
    for (let i = 0; i < spec.layers; i++) {
      const wo = big.get(`encoder.block.${i}.layer.1.DenseReluDense.wo.weight`)!;
      wo.values = wo.values.map((v) => v * 1e6);
    }
    const w = WeightSet.fromFile(await writeModel('big-activations.safetensors', big));
    const config = detectT5EncoderConfig(w, hints);
    const f32 = await runEncoder(config, w, rows.flat(), rows.length, { attention: 'standard' });
    const expected = referenceForward(big, config, rows[1]);
    expect(Math.max(...expected.map(Math.abs))).toBeLessThan(10);
    for (const attention of ATTENTION) {
      const f16 = await runEncoder(config, w, rows.flat(), rows.length, { attention, floatType: 'float16' });
      expect(f16.last_hidden_state.data.every(Number.isFinite), `${attention}: every value finite`).toBe(true);
      const err = maxAbsError(f16.last_hidden_state.data, f32.last_hidden_state.data);
      note(`big activations float16 ${attention} vs float32`, err);
      expect(err).toBeLessThan(5e-2);
    }
  });

  describe('broken tensors are refused with a reason', () => {
    const variant = async (name: string, edit: (t: Tensors) => void) => {
      const t = randomT5(spec);
      edit(t);
      return WeightSet.fromFile(await writeModel(name, t));
    };

    it('a missing tensor names it', async () => {
      const w = await variant('missing.safetensors', (t) => t.delete('encoder.block.2.layer.1.DenseReluDense.wo.weight'));
      expect(() => detectT5EncoderConfig(w, hints)).toThrow(MissingWeightError);
      expect(() => detectT5EncoderConfig(w, hints)).toThrow(/no tensor "encoder\.block\.2\.layer\.1\.DenseReluDense\.wo\.weight"/);
      const noBias = await variant('no-bias.safetensors', (t) => t.delete('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight'));
      expect(() => detectT5EncoderConfig(noBias, hints)).toThrow(/no tensor "encoder\.block\.0\.layer\.0\.SelfAttention\.relative_attention_bias\.weight"/);
    });

    it('a wrong shape names the tensor, its shape and the one the architecture needs', async () => {
      const w = await variant('shape.safetensors', (t) => t.set('encoder.block.1.layer.0.SelfAttention.k.weight', { shape: [60, 39], values: new Float32Array(60 * 39) }));
      expect(() => detectT5EncoderConfig(w, hints)).toThrow(WeightShapeError);
      expect(() => detectT5EncoderConfig(w, hints)).toThrow(/"encoder\.block\.1\.layer\.0\.SelfAttention\.k\.weight" has shape \[60, 39\], the architecture needs \[60, 40\]/);
      const transposed = await variant('wo.safetensors', (t) => t.set('encoder.block.0.layer.1.DenseReluDense.wo.weight', { shape: [72, 40], values: new Float32Array(72 * 40) }));
      expect(() => detectT5EncoderConfig(transposed, hints)).toThrow(/wo\.weight" has shape \[72, 40\], the architecture needs \[40, 72\]/);
    });

    it('tensors outside the architecture, other networks and contradicting hints are refused', async () => {
      const extra = await variant('extra.safetensors', (t) => t.set('encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight', { shape: [8, 5], values: new Float32Array(40) }));
      expect(() => detectT5EncoderConfig(extra, hints)).toThrow(T5ConfigError);
      expect(() => detectT5EncoderConfig(extra, hints)).toThrow(/does not have: encoder\.block\.1\.layer\.0\.SelfAttention\.relative_attention_bias\.weight/);
      const clip = WeightSet.mapped(weights.ref('shared.weight').file, (k) => (k === 'shared.weight' ? 'text_model.embeddings.token_embedding.weight' : undefined), 'clip');
      expect(() => detectT5EncoderConfig(clip)).toThrow(/clip is not a T5 encoder: it has no token embedding "shared\.weight"/);
      const noBlocks = WeightSet.mapped(weights.ref('shared.weight').file, (k) => (k.startsWith('encoder.block.') ? undefined : k), 'no-blocks');
      expect(() => detectT5EncoderConfig(noBlocks)).toThrow(/T5 encoder without blocks/);
      expect(() => detectT5EncoderConfig(weights, { ...hints, numHeads: 4 })).toThrow(/numHeads hint 4 contradicts .*\[8, 5\]/);
      expect(() => detectT5EncoderConfig(weights, { ...hints, relativeAttentionMaxDistance: 2 })).toThrow(/relativeAttentionMaxDistance must be an integer above 2/);
      expect(() => detectT5EncoderConfig(weights, { ...hints, layerNormEpsilon: 0 })).toThrow(/layerNormEpsilon must be positive/);
      expect(() => t5HintsFromTransformersConfig({ dense_act_fn: 'gelu_fast' })).toThrow(/dense_act_fn "gelu_fast" is not supported/);
      expect(() => t5HintsFromTransformersConfig({ num_heads: '64' })).toThrow(/num_heads must be a number/);
    });

    it('the builder refuses weights that do not match the configuration', async () => {
      const config = detectT5EncoderConfig(weights, hints);
      const w = await variant('builder.safetensors', (t) => t.delete('encoder.final_layer_norm.weight'));
      expect(() => buildT5Encoder(config, w)).toThrow(MissingWeightError);
      expect(() => buildT5Encoder({ ...config, dFf: 64 }, weights)).toThrow(WeightShapeError);
    });
  });
});
