import { describe, expect, it } from 'vitest';
import { MODEL_DEFAULTS, modelDefaults } from '@image-api/shared/model-defaults';
import { resolveSampler } from '@image-api/shared/sampler-names';

describe('per-model defaults table (shared/src/model-defaults.ts)', () => {
  it('picks the row by the listing architecture and variant', () => {
    expect(modelDefaults({ architecture: 'FLUX.1-schnell' })).toMatchObject({ steps: 4, cfg_scale: 1, sampler: 'euler', scheduler: 'simple' });
    expect(modelDefaults({ architecture: 'FLUX.1-dev' })).toMatchObject({ steps: 50, cfg_scale: 1, guidance: 3.5 });
    expect(modelDefaults({ architecture: 'Stable Diffusion 3.5 Large' })).toMatchObject({ steps: 28, cfg_scale: 3.5 });
    expect(modelDefaults({ architecture: 'Stable Diffusion 3.5 Large', variant: 'turbo' })).toMatchObject({ steps: 4, cfg_scale: 1 });
    expect(modelDefaults({ architecture: 'Stable Diffusion 3.5 Medium' })).toMatchObject({ steps: 40, cfg_scale: 4.5 });
  });

  it('has no row for the UNet families and unlisted architectures (the API style defaults apply)', () => {
    expect(modelDefaults({ architecture: 'Stable Diffusion 1.x' })).toBeUndefined();
    expect(modelDefaults({ architecture: 'Stable Diffusion XL' })).toBeUndefined();
    expect(modelDefaults({})).toBeUndefined();
    expect(modelDefaults({ architecture: 'Stable Diffusion 3.5 Medium', variant: 'turbo' })).toBeUndefined();
  });

  it('has one row per architecture + variant', () => {
    const keys = MODEL_DEFAULTS.map((row) => `${row.architecture}|${row.variant ?? ''}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("every row's sampler and scheduler are ComfyUI names too (echoed as such by /v1/img2img)", () => {
    for (const row of MODEL_DEFAULTS) {
      const resolved = resolveSampler('comfyui', row.sampler, row.scheduler);
      expect({ sampler: resolved.sampler, scheduler: resolved.scheduler }).toEqual({ sampler: row.sampler, scheduler: row.scheduler });
    }
  });
});
