/**
 * Real-model formats and prompt handling through the real pipeline on tiny-model variants: fp16 and
 * external-data exports, v_prediction and float timesteps, cfg 1 (sd-turbo/LCM style), clip_skip, prompt
 * weighting and long prompts (checked on the text encoder's output), previews and cancellation.
 */
import { describe, expect, it } from 'vitest';
import { generate } from '../../../gpu-service/src/diffusion/pipelines/generate';
import { encodePromptPair } from '../../../gpu-service/src/diffusion/text-conditioning';
import { applyEmphasis } from '../../../gpu-service/src/diffusion/prompt/apply-emphasis';
import { regionMean } from '../../helpers/rgb';
import { testJob, tinyVariant } from '../../helpers/tiny-variants';

const all = () => true;

async function meanOf(variant: string, over: Parameters<typeof testJob>[0] = {}) {
  const model = await tinyVariant(variant);
  const [img] = await generate(model, testJob(over));
  return { img, mean: regionMean(img.rgb, img.width, img.height, all) };
}

describe('model formats', () => {
  it.each(['tiny-analytic-fp16', 'tiny-analytic-external'])('%s generates the same image as the fp32 model within tolerance', async (variant) => {
    const ref = await meanOf('tiny-analytic', { prompt: 'a blue sky' });
    const other = await meanOf(variant, { prompt: 'a blue sky' });
    let maxDiff = 0;
    for (let k = 0; k < ref.img.rgb.length; k++) maxDiff = Math.max(maxDiff, Math.abs(ref.img.rgb[k] - other.img.rgb[k]));
    expect(maxDiff).toBeLessThanOrEqual(variant.endsWith('fp16') ? 8 : 1);
  });

  it.each([
    ['tiny-analytic-v', 'red'],
    ['tiny-analytic-float-t', 'green'],
  ] as const)('%s (v_prediction / float timestep) draws "%s"', async (variant, colour) => {
    const { mean } = await meanOf(variant, { prompt: colour });
    const idx = { red: 0, green: 1, blue: 2 }[colour];
    for (let c = 0; c < 3; c++) if (c !== idx) expect(mean[idx]).toBeGreaterThan(mean[c] + 80);
  });

  it('cfg_scale 1 skips the unconditional pass (one UNet batch of B, not 2B) and 1-step LCM still gives the colour', async () => {
    const model = await tinyVariant('tiny-analytic');
    const run = model.unet.run.bind(model.unet);
    const batches: number[] = [];
    model.unet.run = async (feeds, names) => {
      batches.push((Object.values(feeds).find((f) => f.dims.length === 4)!.dims[0] as number));
      return run(feeds, names);
    };
    try {
      const [img] = await generate(model, testJob({ prompt: 'yellow', cfg_scale: 1, steps: 1, sampler: 'lcm', batch_size: 2 }));
      const [r, g, b] = regionMean(img.rgb, img.width, img.height, all);
      expect(Math.min(r, g)).toBeGreaterThan(b + 60);
      expect(batches).toEqual([2]);
      batches.length = 0;
      await generate(model, testJob({ prompt: 'yellow', cfg_scale: 3, steps: 2, batch_size: 2 }));
      expect(batches).toEqual([4, 4]);
    } finally {
      model.unet.run = run;
    }
  });
});

describe('prompts', () => {
  it('weights scale the weighted token and keep the chunk mean (A1111 emphasis), on the text encoder output', async () => {
    const model = await tinyVariant('tiny-analytic');
    const plain = await encodePromptPair(model, 'red apple', '');
    const weighted = await encodePromptPair(model, '(red:1.5) apple', '');
    const H = model.hiddenSize;
    // The tiny encoder is context-free, so the weighted output must be applyEmphasis(plain, weights).
    const weights = new Array(77).fill(1);
    weights[1] = 1.5;
    const expected = applyEmphasis(plain.cond.hidden, weights, 77, H);
    expect(Array.from(weighted.cond.hidden)).toEqual(Array.from(expected));
    expect(Array.from(weighted.cond.hidden.subarray(H, 2 * H))).not.toEqual(Array.from(plain.cond.hidden.subarray(H, 2 * H)));
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(weighted.cond.hidden)).toBeCloseTo(mean(plain.cond.hidden), 5);
  });

  it('a prompt over 75 tokens is encoded in 77-token chunks, and the negative prompt is padded to the same count', async () => {
    const model = await tinyVariant('tiny-analytic');
    const long = Array.from({ length: 100 }, (_, i) => (i % 2 ? 'red' : 'apple')).join(' ');
    const { cond, uncond } = await encodePromptPair(model, long, 'blue');
    expect(cond.tokens).toBe(154);
    expect(uncond.tokens).toBe(154);
    const { img } = await meanOf('tiny-analytic', { prompt: long });
    const [r, g, b] = regionMean(img.rgb, img.width, img.height, all);
    expect(r).toBeGreaterThan(Math.max(g, b) + 80);
  });

  it('an unparseable weight is a 400-style error naming the field', async () => {
    const model = await tinyVariant('tiny-analytic');
    await expect(generate(model, testJob({ negative_prompt: '(red:1.2.3)' }))).rejects.toMatchObject({ param: 'negative_prompt' });
  });

  it('clip_skip uses an earlier hidden state when the export has them, and is refused when it has not', async () => {
    const model = await tinyVariant('tiny-analytic');
    const a = await encodePromptPair(model, 'red apple', '', 1);
    const b = await encodePromptPair(model, 'red apple', '', 2);
    expect(Array.from(a.cond.hidden)).not.toEqual(Array.from(b.cond.hidden));
    const bare = await tinyVariant('tiny-analytic-no-hidden-states');
    await expect(generate(bare, testJob({ clip_skip: 2 }))).rejects.toMatchObject({ param: 'clip_skip' });
  });
});

describe('progress and cancellation', () => {
  it('reports every step once, and an abort stops the job within one step', async () => {
    const model = await tinyVariant('tiny-analytic');
    const seen: number[] = [];
    await generate(model, testJob({ steps: 7 }), { onStep: (p) => void seen.push(p.step) });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const ac = new AbortController();
    const steps: number[] = [];
    const run = generate(model, testJob({ steps: 30 }), {
      signal: ac.signal,
      onStep: (p) => {
        steps.push(p.step);
        if (p.step === 3) ac.abort(new Error('stop'));
      },
    });
    await expect(run).rejects.toThrow('stop');
    expect(steps).toEqual([1, 2, 3]);
  });
});
