import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_COLOURS, TINY_SCALING_FACTOR } from '../../scripts/tiny-model/constants';
import { tinyColourLatent, tinyDecodeLatentPixel, tinyEncodeRgbPixel } from '../../scripts/tiny-model/vae-maps';
import { generateVariants, mergeRanks, normals, openPart, promptIds, readTokenizer, values, worstRatio } from './helpers';

let models: Awaited<ReturnType<typeof generateVariants>>;
let decoder: ort.InferenceSession;
let encoder: ort.InferenceSession;

beforeAll(async () => {
  models = await generateVariants(['tiny-analytic']);
  decoder = await openPart(path.join(models.root, 'tiny-analytic'), 'vae_decoder');
  encoder = await openPart(path.join(models.root, 'tiny-analytic'), 'vae_encoder');
});
afterAll(async () => {
  await models.cleanup();
});

async function decode(latents: ArrayLike<number>, dims: number[]): Promise<ort.Tensor> {
  return (await decoder.run({ latent_sample: new ort.Tensor('float32', Float32Array.from(latents), dims) })).sample;
}

async function encode(image: ArrayLike<number>, dims: number[]): Promise<ort.Tensor> {
  return (await encoder.run({ sample: new ort.Tensor('float32', Float32Array.from(image), dims) })).latent_sample;
}

/** Mean RGB (in [−1, 1]) of a [1, 3, H, W] image. */
function meanColour(image: ort.Tensor): number[] {
  const data = values(image);
  const plane = image.dims[2] * image.dims[3];
  return [0, 1, 2].map((c) => data.subarray(c * plane, (c + 1) * plane).reduce((s, v) => s + v, 0) / plane);
}

describe('tiny VAE decoder', () => {
  it('turns each colour word latent (divided by scaling_factor) into that colour', async () => {
    for (const [word, rgb] of Object.entries(TINY_COLOURS)) {
      const l = tinyColourLatent(rgb).map((v) => v / TINY_SCALING_FACTOR);
      const image = await decode(l, [1, 4, 1, 1]);
      expect(image.dims).toEqual([1, 3, 8, 8]);
      const want = rgb.map((v) => (v / 255) * 2 - 1);
      meanColour(image).forEach((v, c) => expect(v, `${word} channel ${c}`).toBeCloseTo(want[c], 5));
    }
  });

  it('gives a clearly different (wrong) colour when the SD 1.x scaling factor 0.18215 is used instead', async () => {
    // A pipeline hard-coding SD's constant would decode mid grey's latent as a visible tint.
    const grey = tinyEncodeRgbPixel([0, 0, 0]).map((v) => v * TINY_SCALING_FACTOR);
    const wrong = meanColour(await decode(grey.map((v) => v / 0.18215), [1, 4, 1, 1]));
    expect(Math.max(...wrong.map(Math.abs))).toBeGreaterThan(0.2);
  });

  it('upsamples each latent pixel to an 8×8 block and clips to [−1, 1]', async () => {
    const latents = normals(2 * 4 * 2 * 3, 3).map((v) => v * 3);
    const image = await decode(latents, [2, 4, 2, 3]);
    expect(image.dims).toEqual([2, 3, 16, 24]);
    const data = values(image);
    for (let b = 0; b < 2; b++) {
      for (let y = 0; y < 2; y++) {
        for (let x = 0; x < 3; x++) {
          const l = [0, 1, 2, 3].map((c) => latents[((b * 4 + c) * 2 + y) * 3 + x]);
          const rgb = tinyDecodeLatentPixel(l);
          for (let c = 0; c < 3; c++) {
            for (const [py, px] of [[0, 0], [7, 7], [3, 5]]) {
              expect(data[((b * 3 + c) * 16 + y * 8 + py) * 24 + x * 8 + px]).toBeCloseTo(rgb[c], 5);
            }
          }
        }
      }
    }
    expect(Math.max(...data)).toBeLessThanOrEqual(1);
    expect(Math.min(...data)).toBeGreaterThanOrEqual(-1);
  });
});

describe('tiny VAE encoder', () => {
  it('round-trips: encode(decode(l)) = l for in-range latents', async () => {
    // In-range: latents of colours strictly inside the RGB cube (the decoder does not clip them).
    const rgbs = normals(3 * 12, 9).map((v) => Math.tanh(v) * 0.9);
    const latents = new Float64Array(4 * 12);
    for (let p = 0; p < 12; p++) {
      const l = tinyEncodeRgbPixel([rgbs[p * 3], rgbs[p * 3 + 1], rgbs[p * 3 + 2]]);
      for (let c = 0; c < 4; c++) latents[c * 12 + p] = l[c];
    }
    const back = await encode(values(await decode(latents, [1, 4, 3, 4])), [1, 3, 24, 32]);
    expect(back.dims).toEqual([1, 4, 3, 4]);
    expect(worstRatio(values(back), latents, 1e-5, 1e-5)).toBeLessThanOrEqual(1);
  });

  it('encodes an image to the latents of its 8×8 block averages (decode(encode(img)) = block mean)', async () => {
    const image = normals(3 * 16 * 16, 4).map((v) => Math.tanh(v) * 0.5);
    const roundTrip = values(await decode(values(await encode(image, [1, 3, 16, 16])), [1, 4, 2, 2]));
    for (let c = 0; c < 3; c++) {
      for (let by = 0; by < 2; by++) {
        for (let bx = 0; bx < 2; bx++) {
          let sum = 0;
          for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) sum += image[(c * 16 + by * 8 + y) * 16 + bx * 8 + x];
          expect(roundTrip[(c * 16 + by * 8 + 3) * 16 + bx * 8 + 4]).toBeCloseTo(sum / 64, 5);
        }
      }
    }
  });
});

describe('tiny model end to end (text encoder → Euler sampler on the UNet → decoder)', () => {
  it('draws "a red apple" red, "a blue sky" blue and "green grass" green', async () => {
    const dir = path.join(models.root, 'tiny-analytic');
    const { vocab, mergeLines } = await readTokenizer(dir);
    const ranks = mergeRanks(mergeLines);
    const textEncoder = await openPart(dir, 'text_encoder');
    const unet = await openPart(dir, 'unet');
    const prompts = ['a red apple', 'a blue sky', 'green grass'];
    const ids = prompts.flatMap((p) => promptIds(p, vocab, ranks));
    const hidden = (await textEncoder.run({ input_ids: new ort.Tensor('int32', Int32Array.from(ids), [3, 77]) })).last_hidden_state;
    // Discrete sigmas of the model's schedule at integer timesteps (so the int64 UNet is exact there).
    const table = (() => {
      const out: number[] = [];
      let ab = 1;
      for (let i = 0; i < 1000; i++) {
        ab *= 1 - (Math.sqrt(0.001) + (i / 999) * (Math.sqrt(0.015) - Math.sqrt(0.001))) ** 2;
        out.push(Math.sqrt((1 - ab) / ab));
      }
      return out;
    })();
    const timesteps = [999, 899, 799, 699, 599, 499, 399, 299, 199, 99, 0];
    // The native 256² size (32² latents): the overall colour of a sample varies by TINY_MEAN_STD/√N per
    // pixel (constants.ts), small at this size; tiny images vary more from seed to seed.
    const n = 3 * 4 * 32 * 32;
    let x = normals(n, 42).map((v) => v * table[999]);
    for (let i = 0; i < timesteps.length; i++) {
      const sigma = table[timesteps[i]];
      const out = await unet.run({
        sample: new ort.Tensor('float32', Float32Array.from(x, (v) => v / Math.sqrt(1 + sigma * sigma)), [3, 4, 32, 32]),
        timestep: new ort.Tensor('int64', BigInt64Array.from([BigInt(timesteps[i])]), [1]),
        encoder_hidden_states: hidden,
      });
      const eps = values(out.out_sample);
      const next = i + 1 < timesteps.length ? table[timesteps[i + 1]] : 0;
      x = x.map((v, k) => v + (next - sigma) * eps[k]); // Euler: dx/dσ = ε̂
    }
    const image = await decode(x.map((v) => v / TINY_SCALING_FACTOR), [3, 4, 32, 32]);
    const data = values(image);
    const plane = 256 * 256;
    const mean = (b: number, c: number) => data.subarray((b * 3 + c) * plane, (b * 3 + c + 1) * plane).reduce((s, v) => s + v, 0) / plane;
    for (const [b, dominant] of [[0, 0], [1, 2], [2, 1]]) {
      expect(mean(b, dominant), prompts[b]).toBeGreaterThan(0.6);
      for (let c = 0; c < 3; c++) if (c !== dominant) expect(mean(b, c), `${prompts[b]} channel ${c}`).toBeLessThan(-0.6);
    }
  });
});
