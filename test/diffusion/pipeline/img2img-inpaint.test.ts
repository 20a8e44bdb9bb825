/**
 * img2img, inpainting and hires fix through the real pipeline on the tiny model: what a user would see.
 */
import { describe, expect, it } from 'vitest';
import { generate, JobInputError } from '../../../gpu-service/src/diffusion/pipelines/generate';
import { maskImage, regionMean, splitImage } from '../../helpers/rgb';
import { testJob, tinyVariant } from '../../helpers/tiny-variants';

const W = 64;
const H = 64;
const inCentre = (x: number, y: number) => x >= 16 && x < 48 && y >= 16 && y < 48;

describe('img2img', () => {
  it('at strength 0 returns the input (up to the VAE round trip), keeps structure in proportion to strength, and at 1 ignores it', async () => {
    const model = await tinyVariant('tiny-analytic');
    // Flat 8×8 blocks survive the tiny VAE's block-average round trip exactly.
    const src = await splitImage(W, H, [200, 40, 40], [40, 40, 200]);
    const diff = async (strength: number) => {
      const out = await generate(model, testJob({ mode: 'img2img', init_image: src.b64, strength, prompt: 'green grass', cfg_scale: 1 }));
      let sum = 0;
      for (let k = 0; k < src.rgb.length; k++) sum += Math.abs(out[0].rgb[k] - src.rgb[k]);
      return sum / src.rgb.length; // mean absolute difference per channel, 0..255
    };
    expect(await diff(0)).toBeLessThanOrEqual(1); // nothing to denoise: the VAE round trip alone
    const d = [await diff(0.01), await diff(0.3), await diff(0.7)];
    // One final denoise at sigma_min only nudges the picture (the tiny model's data spread is small, so
    // even that step pulls ~9% toward the prompt's colour); larger strengths move it further.
    expect(d[0]).toBeLessThan(20);
    expect(d[0]).toBeLessThan(d[1]);
    expect(d[1]).toBeLessThan(d[2]);
    const full = await generate(model, testJob({ mode: 'img2img', init_image: src.b64, strength: 1, prompt: 'green grass' }));
    const txt = await generate(model, testJob({ prompt: 'green grass' }));
    const [r, g, b] = regionMean(full[0].rgb, W, H, () => true);
    expect(g).toBeGreaterThan(r + 60);
    expect(g).toBeGreaterThan(b + 60);
    // Strength 1 starts from sigma_max: the source is swamped, like txt2img with the same seed.
    const [tr, tg, tb] = regionMean(txt[0].rgb, W, H, () => true);
    expect(Math.abs(r - tr) + Math.abs(g - tg) + Math.abs(b - tb)).toBeLessThan(15);
  });

  it('runs ⌊steps×strength⌋+1 steps with the A1111 rule and exactly `steps` with the ComfyUI rule', async () => {
    const model = await tinyVariant('tiny-analytic');
    const src = await splitImage(W, H, [128, 128, 128], [128, 128, 128]);
    const count = async (strength_schedule: 'scaled' | 'steps') => {
      let steps = 0;
      await generate(model, testJob({ mode: 'img2img', init_image: src.b64, strength: 0.5, steps: 20, strength_schedule }), {
        onStep: (p) => void (steps = p.total),
      });
      return steps;
    };
    expect(await count('scaled')).toBe(11);
    expect(await count('steps')).toBe(20);
  });
});

describe('inpainting', () => {
  it.each(['alpha', 'white'] as const)('with %s masks never changes a pixel outside the mask and paints the inside', async (mode) => {
    const model = await tinyVariant('tiny-analytic');
    const src = await splitImage(W, H, [30, 30, 200], [30, 30, 200]);
    const mask = await maskImage(W, H, inCentre, mode);
    const out = await generate(model, testJob({ mode: 'inpaint', init_image: src.b64, mask, mask_mode: mode, strength: 1, prompt: 'red' }));
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        if (inCentre(x, y)) continue;
        const o = (y * W + x) * 3;
        expect([out[0].rgb[o], out[0].rgb[o + 1], out[0].rgb[o + 2]]).toEqual([30, 30, 200]);
      }
    }
    // The tiny model's 4-channel UNet has no notion of locality: its wide spread is the whole image's mean
    // colour (scripts/tiny-model/README.md), so the repainted square takes the prompt's red blended with
    // the image's blue — red-dominant, far from the source. The 9-channel variant below paints it pure.
    const [r, , b] = regionMean(out[0].rgb, W, H, (x, y) => x >= 24 && x < 40 && y >= 24 && y < 40);
    expect(r).toBeGreaterThan(30 + 90);
    expect(r).toBeGreaterThan(b + 15);
  });

  it('works with a 9-channel inpainting UNet', async () => {
    const model = await tinyVariant('tiny-analytic-inpaint');
    expect(model.unetInChannels).toBe(9);
    const src = await splitImage(W, H, [30, 200, 30], [30, 200, 30]);
    const mask = await maskImage(W, H, inCentre, 'white');
    const out = await generate(model, testJob({ mode: 'inpaint', init_image: src.b64, mask, mask_mode: 'white', strength: 1, prompt: 'blue' }));
    const outside = regionMean(out[0].rgb, W, H, (x, y) => !inCentre(x, y));
    expect(outside).toEqual([30, 200, 30]);
    const [r, g, b] = regionMean(out[0].rgb, W, H, (x, y) => x >= 24 && x < 40 && y >= 24 && y < 40);
    expect(b).toBeGreaterThan(Math.max(r, g) + 40);
    await expect(generate(model, testJob({ prompt: 'blue' }))).rejects.toBeInstanceOf(JobInputError);
  });

  it('refuses a mask that covers nothing and an alpha-mode mask without alpha', async () => {
    const model = await tinyVariant('tiny-analytic');
    const src = await splitImage(W, H, [30, 30, 200], [30, 30, 200]);
    const none = await maskImage(W, H, () => false, 'white');
    await expect(generate(model, testJob({ mode: 'inpaint', init_image: src.b64, mask: none, mask_mode: 'white' }))).rejects.toMatchObject({ param: 'mask' });
    await expect(generate(model, testJob({ mode: 'inpaint', init_image: src.b64, mask: src.b64, mask_mode: 'alpha' }))).rejects.toMatchObject({ param: 'mask' });
  });
});

describe('hires fix', () => {
  it.each(['latent', 'latent-nearest', 'lanczos'] as const)('%s: output has the target size and keeps the first pass colour', async (upscaler) => {
    const model = await tinyVariant('tiny-analytic');
    const out = await generate(
      model,
      testJob({ prompt: 'a yellow sun', hires_fix: { target_width: 128, target_height: 96, strength: 0.5, upscaler } }),
    );
    expect([out[0].width, out[0].height]).toEqual([128, 96]);
    const [r, g, b] = regionMean(out[0].rgb, 128, 96, () => true);
    expect(r).toBeGreaterThan(b + 80);
    expect(g).toBeGreaterThan(b + 80);
  });
});

describe('distilled guidance', () => {
  it('is refused naming guidance on a model whose network takes none (it would be ignored otherwise)', async () => {
    const model = await tinyVariant('tiny-analytic');
    await expect(generate(model, testJob({ guidance: 3.5 }))).rejects.toMatchObject({ param: 'guidance' });
    await expect(generate(model, testJob({ guidance: 3.5 }))).rejects.toBeInstanceOf(JobInputError);
  });
});
