/**
 * Every public sampler and scheduler name of every API style, resolved through the shared name table,
 * produces an image of the prompt's colour through the real pipeline on the tiny model.
 * (The public-API version of this check lives in test/e2e.)
 */
import { describe, expect, it } from 'vitest';
import { generate } from '../../../gpu-service/src/diffusion/pipelines/generate';
import { DEFAULT_SAMPLER_NAME, SAMPLER_NAMES, SCHEDULER_NAMES, resolveSampler, type NameStyle, samplerJobFields } from '@image-api/shared/sampler-names';
import { regionMean } from '../../helpers/rgb';
import { testJob, tinyVariant } from '../../helpers/tiny-variants';

const STYLES: NameStyle[] = ['sdcpp', 'comfyui', 'a1111'];

async function colourOf(style: NameStyle, sampler: string, scheduler?: string) {
  const model = await tinyVariant('tiny-analytic');
  const r = resolveSampler(style, sampler, scheduler);
  const [img] = await generate(
    model,
    testJob({
      prompt: 'a blue sky',
      steps: 10,
      cfg_scale: 4,
      ...samplerJobFields(r),
    }),
  );
  return regionMean(img.rgb, img.width, img.height, () => true);
}

describe.each(STYLES)('%s names', (style) => {
  it.each([...SAMPLER_NAMES[style]])('sampler %s draws a blue sky', async (name) => {
    const [r, g, b] = await colourOf(style, name);
    expect(b).toBeGreaterThan(Math.max(r, g) + 60);
  });
  it.each([...SCHEDULER_NAMES[style]])('scheduler %s draws a blue sky', async (name) => {
    const [r, g, b] = await colourOf(style, DEFAULT_SAMPLER_NAME[style], name);
    expect(b).toBeGreaterThan(Math.max(r, g) + 60);
  });
});
