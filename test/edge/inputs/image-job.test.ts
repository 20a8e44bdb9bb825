import { describe, expect, it } from 'vitest';
import { jobCost, resolveSeed } from '../../../edge/src/inputs/image-job';
import { sizeFromSourceImage } from '../../../edge/src/inputs/source-size';
import { ApiError } from '../../../edge/src/lib/api-error';
import { MAX_SEED } from '@image-api/shared/generation-job';

const base = { id: 't', model: 'm', prompt: '', width: 512, height: 256, seed: 1, steps: 20 };

describe('jobCost: steps actually run, as the GPU service schedules them', () => {
  it('txt2img runs every step', () => {
    expect(jobCost({ ...base, mode: 'txt2img' })).toEqual({ steps: 20, width: 512, height: 256 });
  });

  it("'scaled' img2img runs ⌊strength·steps⌋ + 1 (A1111 / sd.cpp t_enc)", () => {
    expect(jobCost({ ...base, mode: 'img2img', strength: 0.75 }).steps).toBe(16);
    expect(jobCost({ ...base, mode: 'inpaint', strength: 0.5, strength_schedule: 'scaled' }).steps).toBe(11);
    expect(jobCost({ ...base, mode: 'img2img', strength: 0.01 }).steps).toBe(1);
    expect(jobCost({ ...base, mode: 'img2img', strength: 1 }).steps).toBe(20);
  });

  it("'steps' (ComfyUI) runs exactly steps at any strength", () => {
    expect(jobCost({ ...base, mode: 'img2img', strength: 0.3, strength_schedule: 'steps' }).steps).toBe(20);
  });
});

describe('sizeFromSourceImage', () => {
  it('keeps a size that fits, rounded down to multiples of 8', () => {
    expect(sizeFromSourceImage(512, 512, 1024 * 1024)).toEqual({ width: 512, height: 512 });
    expect(sizeFromSourceImage(517, 301, 1024 * 1024)).toEqual({ width: 512, height: 296 });
  });

  it('scales a large image down to the pixel budget, aspect ratio kept', () => {
    expect(sizeFromSourceImage(1000, 700, 512 * 512)).toEqual({ width: 608, height: 424 });
    const s = sizeFromSourceImage(4096, 4096, 1024 * 1024);
    expect(s).toEqual({ width: 1024, height: 1024 });
  });

  it('never scales up and never goes below 64 per side', () => {
    expect(sizeFromSourceImage(40, 30, 512 * 512)).toEqual({ width: 64, height: 64 });
    const thin = sizeFromSourceImage(4096, 10, 64 * 64 * 4);
    expect(thin.height).toBe(64);
    expect(thin.width * thin.height).toBeLessThanOrEqual(64 * 64 * 4);
  });
});

describe('resolveSeed', () => {
  it('keeps a given seed (0 included) and picks one for −1 / omitted', () => {
    expect(resolveSeed(0, 1)).toBe(0);
    expect(resolveSeed(-1, 1, () => 99)).toBe(99);
    expect(resolveSeed(undefined, 1, () => 5)).toBe(5);
  });

  it('refuses seed + n − 1 beyond 2^64 − 1, keeping large seeds exact', () => {
    expect(resolveSeed(String(MAX_SEED - 2n), 3)).toBe('18446744073709551613');
    expect(resolveSeed('18446744073709551615', 1)).toBe('18446744073709551615');
    expect(() => resolveSeed(String(MAX_SEED - 1n), 3)).toThrow(ApiError);
  });
});
