import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_VARIANTS } from '../../scripts/tiny-model/generate';
import { floatTensor, generateVariants, inputType, mergeRanks, normals, openPart, promptIds, readTokenizer, values, worstRatio } from './helpers';

const PARTS = ['text_encoder', 'unet', 'vae_decoder', 'vae_encoder'] as const;
let models: Awaited<ReturnType<typeof generateVariants>>;
const sessions = new Map<string, ort.InferenceSession>();
const session = (variant: string, part: string) => sessions.get(`${variant}/${part}`)!;

beforeAll(async () => {
  models = await generateVariants(Object.keys(TINY_VARIANTS));
  for (const variant of Object.keys(TINY_VARIANTS)) {
    for (const part of PARTS) sessions.set(`${variant}/${part}`, await openPart(path.join(models.root, variant), part));
  }
});
afterAll(async () => {
  await models.cleanup();
});

describe('tiny model variants', () => {
  it('every variant loads all four parts in onnxruntime-node', () => {
    expect(sessions.size).toBe(Object.keys(TINY_VARIANTS).length * PARTS.length);
  });

  it('declares the element types each variant promises', () => {
    const expected: Record<string, { ids: string; float: string; timestep: string; channels: number }> = {
      'tiny-analytic': { ids: 'int32', float: 'float32', timestep: 'int64', channels: 4 },
      'tiny-analytic-v': { ids: 'int32', float: 'float32', timestep: 'int64', channels: 4 },
      'tiny-analytic-float-t': { ids: 'int32', float: 'float32', timestep: 'float32', channels: 4 },
      'tiny-analytic-inpaint': { ids: 'int32', float: 'float32', timestep: 'int64', channels: 9 },
      'tiny-analytic-fp16': { ids: 'int32', float: 'float16', timestep: 'int64', channels: 4 },
      'tiny-analytic-external': { ids: 'int64', float: 'float32', timestep: 'int64', channels: 4 },
      'tiny-analytic-no-hidden-states': { ids: 'int32', float: 'float32', timestep: 'int64', channels: 4 },
    };
    expect(Object.keys(expected).sort()).toEqual(Object.keys(TINY_VARIANTS).sort());
    for (const [variant, want] of Object.entries(expected)) {
      expect(inputType(session(variant, 'text_encoder'), 'input_ids'), variant).toBe(want.ids);
      const unet = session(variant, 'unet');
      expect(inputType(unet, 'sample'), variant).toBe(want.float);
      expect(inputType(unet, 'encoder_hidden_states'), variant).toBe(want.float);
      expect(inputType(unet, 'timestep'), variant).toBe(want.timestep);
      const sampleMeta = unet.inputMetadata.find((m) => m.name === 'sample');
      expect(sampleMeta && sampleMeta.isTensor && sampleMeta.shape[1], variant).toBe(want.channels);
      expect(inputType(session(variant, 'vae_decoder'), 'latent_sample'), variant).toBe(want.float);
      expect(inputType(session(variant, 'vae_encoder'), 'sample'), variant).toBe(want.float);
      for (const part of PARTS) {
        for (const meta of session(variant, part).outputMetadata) expect(meta.isTensor && meta.type, `${variant} ${part} ${meta.name}`).toBe(want.float);
      }
    }
  });

  for (const variant of ['tiny-analytic-fp16', 'tiny-analytic-external']) {
    it(`${variant} gives the same outputs as the float32 model within tolerance`, async () => {
      const reference = 'tiny-analytic';
      const float = inputType(session(variant, 'unet'), 'sample') as 'float32' | 'float16';
      const [atol, rtol] = float === 'float16' ? [2e-3, 4e-3] : [1e-7, 1e-7];
      const dir = path.join(models.root, reference);
      const { vocab, mergeLines } = await readTokenizer(dir);
      const ids = ['a red apple', 'a photo of a blue sky'].flatMap((p) => promptIds(p, vocab, mergeRanks(mergeLines)));
      const idsTensor = (type: string) =>
        type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [2, 77]) : new ort.Tensor('int32', Int32Array.from(ids), [2, 77]);

      // Text encoder: every output.
      const refText = await session(reference, 'text_encoder').run({ input_ids: idsTensor('int32') });
      const gotText = await session(variant, 'text_encoder').run({ input_ids: idsTensor(inputType(session(variant, 'text_encoder'), 'input_ids')) });
      for (const name of session(reference, 'text_encoder').outputNames) {
        expect(worstRatio(values(gotText[name]), values(refText[name]), atol, rtol), name).toBeLessThanOrEqual(1);
      }

      // UNet: same float inputs (rounded to float16 first, so only the model's own precision differs).
      const hidden = values(refText.last_hidden_state);
      const sample = normals(2 * 4 * 4 * 4, 8);
      const asFloat = (data: ArrayLike<number>, dims: number[]) => floatTensor(float, data, dims);
      const roundTo = (data: ArrayLike<number>) => values(floatTensor(float, data, [data.length]));
      for (const t of [0, 400, 999]) {
        const timestep = new ort.Tensor('int64', BigInt64Array.from([BigInt(t)]), [1]);
        const ref = await session(reference, 'unet').run({
          sample: floatTensor('float32', roundTo(sample), [2, 4, 4, 4]),
          timestep,
          encoder_hidden_states: floatTensor('float32', roundTo(hidden), [2, 77, 32]),
        });
        const got = await session(variant, 'unet').run({
          sample: asFloat(sample, [2, 4, 4, 4]),
          timestep,
          encoder_hidden_states: asFloat(hidden, [2, 77, 32]),
        });
        // ε̂ at t = 0 divides by σ ≈ 0.03, amplifying float16 rounding of the weights; allow 5× there.
        const scale = float === 'float16' && t === 0 ? 5 : 1;
        expect(worstRatio(values(got.out_sample), values(ref.out_sample), atol * scale, rtol * scale), `t=${t}`).toBeLessThanOrEqual(1);
      }

      // VAE decoder and encoder.
      const latents = roundTo(normals(4 * 2 * 2, 12));
      const refImage = await session(reference, 'vae_decoder').run({ latent_sample: floatTensor('float32', latents, [1, 4, 2, 2]) });
      const gotImage = await session(variant, 'vae_decoder').run({ latent_sample: asFloat(latents, [1, 4, 2, 2]) });
      expect(worstRatio(values(gotImage.sample), values(refImage.sample), atol, rtol)).toBeLessThanOrEqual(1);
      const image = roundTo(values(refImage.sample));
      const refLatents = await session(reference, 'vae_encoder').run({ sample: floatTensor('float32', image, [1, 3, 16, 16]) });
      const gotLatents = await session(variant, 'vae_encoder').run({ sample: asFloat(image, [1, 3, 16, 16]) });
      expect(worstRatio(values(gotLatents.latent_sample), values(refLatents.latent_sample), atol, rtol)).toBeLessThanOrEqual(1);
    });
  }
});
