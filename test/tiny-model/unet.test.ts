import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTinyModel, TINY_VARIANTS } from '../../scripts/tiny-model/generate';
import { tinyImageDenoiser, tinyMu, tinyUnetOutput, type TinyPredictionType } from '../../scripts/tiny-model/closed-form';
import { TINY_DATA_STD, TINY_KEEP_STD } from '../../scripts/tiny-model/constants';
import { mergeRanks, normals, openPart, promptIds, readTokenizer, values, worstRatio } from './helpers';

let root: string;
const sessions: Record<string, ort.InferenceSession> = {};
let hidden2: Float64Array; // encoder hidden states of ["a red apple", "a blue sky"], [2, 77, 32]
let mu2: Float64Array;
let sigmaTable: Float64Array; // from scheduler_config.json, computed here independently (docs/samplers.md §1.1)

const VARIANTS: Record<string, Parameters<typeof generateTinyModel>[1]> = {
  'tiny-analytic': TINY_VARIANTS['tiny-analytic'],
  'tiny-analytic-v': TINY_VARIANTS['tiny-analytic-v'],
  'tiny-analytic-float-t': TINY_VARIANTS['tiny-analytic-float-t'],
  'tiny-analytic-inpaint': TINY_VARIANTS['tiny-analytic-inpaint'],
  'float-t-v': { timestepType: 'float32', predictionType: 'v_prediction' },
};

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'tiny-model-unet-'));
  for (const [name, options] of Object.entries(VARIANTS)) {
    await generateTinyModel(path.join(root, name), options);
    sessions[name] = await openPart(path.join(root, name), 'unet');
  }
  const dir = path.join(root, 'tiny-analytic');
  const { vocab, mergeLines } = await readTokenizer(dir);
  const ranks = mergeRanks(mergeLines);
  const ids = [...promptIds('a red apple', vocab, ranks), ...promptIds('a blue sky', vocab, ranks)];
  const encoder = await openPart(dir, 'text_encoder');
  const out = await encoder.run({ input_ids: new ort.Tensor('int32', Int32Array.from(ids), [2, 77]) });
  hidden2 = values(out.last_hidden_state);
  mu2 = tinyMu(hidden2, 2, 77);
  const config = JSON.parse(await readFile(path.join(dir, 'scheduler', 'scheduler_config.json'), 'utf8'));
  sigmaTable = new Float64Array(config.num_train_timesteps);
  const a = Math.sqrt(config.beta_start);
  const b = Math.sqrt(config.beta_end);
  let alphaBar = 1;
  for (let i = 0; i < sigmaTable.length; i++) {
    alphaBar *= 1 - (a + (i / (sigmaTable.length - 1)) * (b - a)) ** 2;
    sigmaTable[i] = Math.sqrt((1 - alphaBar) / alphaBar);
  }
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function runUnet(
  variant: string,
  sample: ArrayLike<number>,
  shape: [number, number, number, number],
  timestep: readonly number[],
): Promise<Float64Array> {
  const session = sessions[variant];
  const tType = session.inputMetadata.find((m) => m.name === 'timestep');
  const t =
    tType && tType.isTensor && tType.type === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from(timestep.map((v) => BigInt(v))), [timestep.length])
      : new ort.Tensor('float32', Float32Array.from(timestep), [timestep.length]);
  const out = await session.run({
    sample: new ort.Tensor('float32', Float32Array.from(sample), shape),
    timestep: t,
    encoder_hidden_states: new ort.Tensor('float32', Float32Array.from(hidden2), [2, 77, 32]),
  });
  expect(out.out_sample.dims).toEqual([shape[0], 4, shape[2], shape[3]]);
  return values(out.out_sample);
}

/** k-diffusion's t(σ): invert the piecewise log-linear σ(t) (docs/samplers.md §1.2). */
function timestepOfSigma(sigma: number): number {
  const logSigma = Math.log(sigma);
  let lo = 0;
  while (lo < sigmaTable.length - 2 && Math.log(sigmaTable[lo + 1]) <= logSigma) lo += 1;
  const w = (logSigma - Math.log(sigmaTable[lo])) / (Math.log(sigmaTable[lo + 1]) - Math.log(sigmaTable[lo]));
  return lo + Math.min(1, Math.max(0, w));
}

describe('tiny UNet against the closed form', () => {
  const shape: [number, number, number, number] = [2, 4, 3, 5]; // non-square: resolution-agnostic
  const sample = normals(2 * 4 * 3 * 5, 11).map((v) => v * 1.3);

  for (const [variant, prediction] of [['tiny-analytic', 'epsilon'], ['tiny-analytic-v', 'v_prediction']] as const) {
    it(`${variant}: int64 timesteps 0, 1, 250, 999 and per-item timesteps give the exact ${prediction}`, async () => {
      for (const timestep of [[0], [1], [250], [999], [10, 700]]) {
        const got = await runUnet(variant, sample, shape, timestep);
        const want = tinyUnetOutput({ sample, shape, timestep, mu: mu2, predictionType: prediction });
        expect(worstRatio(got, want, 2e-5, 1e-4), `t=${timestep}`).toBeLessThanOrEqual(1);
      }
    });
  }

  it('clamps int64 timesteps outside [0, 999]', async () => {
    expect(await runUnet('tiny-analytic', sample, shape, [1500])).toEqual(await runUnet('tiny-analytic', sample, shape, [999]));
    expect(await runUnet('tiny-analytic', sample, shape, [-7])).toEqual(await runUnet('tiny-analytic', sample, shape, [0]));
  });

  it('float timestep: fractional t interpolates log sigma, integer t matches the int64 model', async () => {
    for (const timestep of [[0.5], [37.25], [512.75], [998.9], [3.5, 801.125]]) {
      const got = await runUnet('tiny-analytic-float-t', sample, shape, timestep);
      const want = tinyUnetOutput({ sample, shape, timestep, mu: mu2, predictionType: 'epsilon' });
      expect(worstRatio(got, want, 2e-5, 1e-4), `t=${timestep}`).toBeLessThanOrEqual(1);
    }
    const intModel = await runUnet('tiny-analytic', sample, shape, [321]);
    const floatModel = await runUnet('tiny-analytic-float-t', sample, shape, [321]);
    expect(worstRatio(floatModel, intModel, 1e-6, 1e-6)).toBeLessThanOrEqual(1);
  });

  for (const [variant, prediction] of [['tiny-analytic-float-t', 'epsilon'], ['float-t-v', 'v_prediction']] as const) {
    it(`${variant}: through the k-diffusion wrapper the model IS D(x, σ) = mu + w(s)(x − mu) + (w(S) − w(s))·mean(x − mu)`, async () => {
      const vShape: [number, number, number, number] = [2, 4, 2, 2];
      for (const sigma of [0.05, 0.37, 2.5, 19]) {
        const x = normals(32, 5).map((v) => v * Math.sqrt(1 + sigma * sigma)); // VE-scaled latents
        const cIn = 1 / Math.sqrt(1 + sigma * sigma);
        const out = await runUnet(variant, x.map((v) => v * cIn), vShape, [timestepOfSigma(sigma)]);
        const d = x.map((xi, i) => {
          const mu = mu2[Math.floor(i / 16) * 4 + (Math.floor(i / 4) % 4)];
          // eps: D = x − σ·ε̂; v (k-diffusion's VDenoiser): D = x/(1+σ²) − σ/sqrt(1+σ²)·v̂.
          return prediction === 'epsilon' ? xi - sigma * out[i] : xi / (1 + sigma * sigma) - sigma * cIn * out[i];
        });
        // Per image b (16 values: 4 channels × 2×2 pixels), the mean-colour term included.
        const want = [0, 1].flatMap((b) => Array.from(tinyImageDenoiser(x.slice(b * 16, (b + 1) * 16), sigma, mu2.slice(b * 4, (b + 1) * 4), 4)));
        expect(worstRatio(d, want, 1e-4, 1e-4), `sigma=${sigma}`).toBeLessThanOrEqual(1);
      }
    });
  }

  it('closed form (float64) is exactly the Gaussian denoiser through the wrapper', () => {
    const sh: [number, number, number, number] = [1, 4, 1, 1];
    for (const t of [0, 17.5, 400, 999]) {
      const sigma = Math.exp((1 - (t % 1)) * Math.log(sigmaTable[Math.floor(t)]) + (t % 1) * Math.log(sigmaTable[Math.ceil(t)]));
      const x = [0.3, -2, 5, 0.01].map((v) => v * Math.sqrt(1 + sigma * sigma));
      for (const predictionType of ['epsilon', 'v_prediction'] as TinyPredictionType[]) {
        const out = tinyUnetOutput({ sample: x.map((v) => v / Math.sqrt(1 + sigma * sigma)), shape: sh, timestep: [t], mu: mu2, predictionType });
        const want = tinyImageDenoiser(x, sigma, mu2.slice(0, 4), 1);
        x.forEach((xi, i) => {
          const d = predictionType === 'epsilon' ? xi - sigma * out[i] : xi / (1 + sigma * sigma) - (sigma / Math.sqrt(1 + sigma * sigma)) * out[i];
          expect(d).toBeCloseTo(want[i], 9);
        });
      }
    }
  });

  it('uses the prompt: different hidden states give different outputs, colour words set mu', async () => {
    const oneItem = sample.slice(0, 60);
    const out = await runUnet('tiny-analytic', [...oneItem, ...oneItem], shape, [500]);
    expect(Array.from(out.slice(0, 60))).not.toEqual(Array.from(out.slice(60)));
  });
});

describe('tiny inpainting UNet', () => {
  const shape: [number, number, number, number] = [2, 9, 2, 3];
  const plane = 6;
  const base = normals(2 * 9 * plane, 23);
  // Mask per pixel: keep (0), repaint (1), a soft edge (0.5), and out-of-range values that are clamped.
  const maskValues = [0, 1, 0.5, 0, 1, 1.7];
  const sample = base.map((v, i) => (Math.floor(i / plane) % 9 === 4 ? maskValues[i % plane] : v));

  it('matches the closed form (latents + mask + masked-image latents)', async () => {
    for (const timestep of [[0], [300], [999]]) {
      const got = await runUnet('tiny-analytic-inpaint', sample, shape, timestep);
      const want = tinyUnetOutput({ sample, shape, timestep, mu: mu2, predictionType: 'epsilon' });
      expect(worstRatio(got, want, 2e-5, 1e-4), `t=${timestep}`).toBeLessThanOrEqual(1);
    }
  });

  it('pulls kept pixels toward the masked-image latents and repainted pixels toward the prompt', async () => {
    const t = 999;
    const sigma = sigmaTable[t];
    const r = Math.sqrt(1 + sigma * sigma);
    const eps = await runUnet('tiny-analytic-inpaint', sample, shape, [t]);
    for (let b = 0; b < 2; b++) {
      for (let c = 0; c < 4; c++) {
        for (let p = 0; p < plane; p++) {
          const x = sample[(b * 9 + c) * plane + p];
          const x0 = r * x - sigma * eps[(b * 4 + c) * plane + p]; // D(x_VE, σ)
          const known = sample[(b * 9 + 5 + c) * plane + p];
          const mu = mu2[b * 4 + c];
          const target = maskValues[p] === 0 ? known : maskValues[p] >= 1 ? mu : (known + mu) / 2;
          const std = maskValues[p] === 0 ? TINY_KEEP_STD : TINY_DATA_STD;
          expect(Math.abs(x0 - target), `b${b} c${c} p${p}`).toBeLessThan(3 * (std * std) / sigma + 1e-4);
        }
      }
    }
  });
});
