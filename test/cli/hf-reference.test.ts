import { describe, expect, it } from 'vitest';
import { looksLikeHfReference, parseHfReference } from '../../cli/src/hf-reference';

describe('Hugging Face references', () => {
  it('parses the seed doc examples (repo, revision or file, and the local folder name)', () => {
    expect(parseHfReference('hf.co/gpustack/stable-diffusion-v3-5-large-turbo-GGUF')).toMatchObject({
      repo: 'gpustack/stable-diffusion-v3-5-large-turbo-GGUF',
      revision: 'main',
      folderName: 'gpustack--stable-diffusion-v3-5-large-turbo-GGUF',
    });
    expect(parseHfReference('hf.co/gpustack/stable-diffusion-v3-5-large-turbo-GGUF:FP16')?.revision).toBe('FP16');
    expect(
      parseHfReference('hf.co/gpustack/stable-diffusion-v3-5-large-turbo-GGUF:stable-diffusion-v3-5-large-turbo-Q4_0.gguf')?.file,
    ).toBe('stable-diffusion-v3-5-large-turbo-Q4_0.gguf');
  });

  it('refuses malformed references', () => {
    for (const bad of ['hf.co/org', 'hf.co/org/', 'hf.co//repo', 'hf.co/org/repo:', 'hf.co/org/repo/extra', 'hf.co/o g/r']) {
      expect(parseHfReference(bad), bad).toBeNull();
    }
  });

  it('tells references from plain model names', () => {
    expect(looksLikeHfReference('HF.co/x/y')).toBe(true);
    expect(looksLikeHfReference('tiny-analytic')).toBe(false);
    expect(looksLikeHfReference('sd1.5/majicmixRealistic_betterV6.safetensors')).toBe(false);
  });
});
