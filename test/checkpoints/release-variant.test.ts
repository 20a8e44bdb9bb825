import { describe, expect, it } from 'vitest';
import { releaseVariant } from '../../gpu-service/src/checkpoints/release-variant';

describe('releaseVariant: releases the tensors cannot tell apart, from the model id', () => {
  it('SD 3.5 Large with "turbo" in its id is the turbo release', () => {
    expect(releaseVariant('Stable Diffusion 3.5 Large', 'sd3.5/sd3.5_large_turbo.safetensors')).toBe('turbo');
    expect(releaseVariant('Stable Diffusion 3.5 Large', 'hf.co/gpustack/stable-diffusion-v3-5-large-turbo-GGUF:Q4_0')).toBe('turbo');
    expect(releaseVariant('Stable Diffusion 3.5 Large', 'sd3.5/Stable-Diffusion-3.5-Large-TURBO')).toBe('turbo');
  });

  it('no variant for other ids or architectures', () => {
    expect(releaseVariant('Stable Diffusion 3.5 Large', 'sd3.5/sd3.5_large.safetensors')).toBeUndefined();
    expect(releaseVariant('Stable Diffusion 3.5 Medium', 'sd3.5m_turbo-Q8_0.gguf')).toBeUndefined();
    expect(releaseVariant('Stable Diffusion XL', 'sdxl-turbo.safetensors')).toBeUndefined();
  });
});
