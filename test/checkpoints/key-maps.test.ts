import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { diffusersUnetKeyMap, ldmUnetToDiffusers } from '../../gpu-service/src/checkpoints/key-maps/diffusers-unet';
import { diffusersVaeKeyMap, ldmVaeShape } from '../../gpu-service/src/checkpoints/key-maps/diffusers-vae';
import { fixtureDir, hasFixture } from '../helpers/checkpoint-fixtures';

/**
 * The fixtures' single files were written from the diffusers folders with upstream's key maps and load back
 * weight-identical (cases.json `checks`), so the diffusers keys renamed by our maps must give exactly the
 * single file's keys, shapes and values.
 */
async function expectSameTensors(diffusersFile: string, singleFile: string, prefix: string, rename: (keys: string[]) => (k: string) => string | undefined, reshape = (_: string, s: number[]) => s) {
  const d = await openSafetensors(diffusersFile);
  const s = await openSafetensors(singleFile);
  try {
    const map = rename([...d.entries.keys()]);
    const renamed = new Map<string, string>();
    for (const k of d.entries.keys()) {
      const to = map(k);
      expect(to, `diffusers key ${k} has no LDM name`).toBeDefined();
      renamed.set(prefix + to!, k);
    }
    const ldmKeys = [...s.entries.keys()].filter((k) => k.startsWith(prefix)).sort();
    expect([...renamed.keys()].sort()).toEqual(ldmKeys);
    for (const [ldm, key] of renamed) {
      expect(reshape(ldm.slice(prefix.length), d.entries.get(key)!.shape), ldm).toEqual(s.entries.get(ldm)!.shape);
      const [a, b] = await Promise.all([d.readFloat32(key), s.readFloat32(ldm)]);
      expect(firstDifference(a, b), ldm).toBe(-1);
    }
  } finally {
    await Promise.all([d.close(), s.close()]);
  }
}

/** Index of the first differing element, or −1 (vitest's deep equality is far too slow for weight arrays). */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

const families = [
  { name: 'SD 1.x', root: 'checkpoints/sd15-tiny', single: 'sd15-tiny.safetensors' },
  { name: 'SDXL base', root: 'checkpoints-xl/sdxl-base', single: 'sd_xl_base_tiny.safetensors' },
];

describe.skipIf(!hasFixture('checkpoints') || !hasFixture('checkpoints-xl'))('diffusers → LDM key maps reproduce the single-file checkpoints', () => {
  for (const f of families) {
    it(`${f.name} UNet`, async () => {
      const root = fixtureDir(f.root);
      await expectSameTensors(path.join(root, 'diffusers/unet/diffusion_pytorch_model.safetensors'), path.join(root, f.single), 'model.diffusion_model.', diffusersUnetKeyMap);
    });
    it(`${f.name} VAE`, async () => {
      const root = fixtureDir(f.root);
      await expectSameTensors(path.join(root, 'diffusers/vae/diffusion_pytorch_model.safetensors'), path.join(root, f.single), 'first_stage_model.', diffusersVaeKeyMap, ldmVaeShape);
    });
  }
  it('SDXL refiner UNet (four blocks, 12 input and output blocks)', async () => {
    const root = fixtureDir('checkpoints-xl/sdxl-refiner');
    await expectSameTensors(path.join(root, 'diffusers/unet/diffusion_pytorch_model.safetensors'), path.join(root, 'sd_xl_refiner_tiny.safetensors'), 'model.diffusion_model.', diffusersUnetKeyMap);
  });
});

describe.skipIf(!hasFixture('checkpoints') || !hasFixture('checkpoints-xl'))('LDM → diffusers (the inverse UNet map)', () => {
  for (const f of [...families, { name: 'SDXL refiner', root: 'checkpoints-xl/sdxl-refiner', single: 'sd_xl_refiner_tiny.safetensors' }]) {
    it(`${f.name}: every diffusers UNet key maps to LDM and back to itself`, async () => {
      const d = await openSafetensors(path.join(fixtureDir(f.root), 'diffusers/unet/diffusion_pytorch_model.safetensors'));
      try {
        const keys = [...d.entries.keys()];
        const toLdm = diffusersUnetKeyMap(keys);
        const ldmKeys = keys.map((k) => toLdm(k)!);
        const back = ldmUnetToDiffusers(ldmKeys);
        for (const k of keys) expect(back(toLdm(k)!), k).toBe(k);
      } finally {
        await d.close();
      }
    });
  }
});
