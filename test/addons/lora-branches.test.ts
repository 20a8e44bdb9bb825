/**
 * LoRA as side branches (gpu-service/src/addons/lora-branches.ts): one session of the tiny SD 1.x model's UNet and
 * text encoder with a branch on every Linear and Conv serves each LoRA set; the fixture's diffusers references
 * (`load_lora_weights`) must come out for every file format and strength, the same session must give the plain
 * model's outputs with no LoRA, and agree with the patched-weights path on a LoCon conv LoRA and two LoRAs at once.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentHashes } from '../../gpu-service/src/checkpoints/content-hash';
import { ConversionCache } from '../../gpu-service/src/checkpoints/conversion-cache';
import { loadCheckpointModel, type CheckpointEngineOptions } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { ModelVariants } from '../../gpu-service/src/addons/model-variants';
import type { DiffusionModel } from '../../gpu-service/src/models/diffusion-model';
import { parseLoraFile } from '../../gpu-service/src/addons/lora-file';
import { loraPatches } from '../../gpu-service/src/addons/lora-patch';
import { loraTargetIndex } from '../../gpu-service/src/addons/lora-targets';
import { loraBranchFeeds, openBranchedGraphs, type BranchedGraph } from '../../gpu-service/src/addons/lora-branches';
import { loadBaseGraph, openPatchedGraph } from '../../gpu-service/src/addons/patched-graphs';
import type { OnnxModel } from '../../gpu-service/src/onnx/session';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { writeSafetensors } from '../../gpu-service/src/weights/safetensors-writer';
import type { TensorFile } from '../../gpu-service/src/weights/tensor-file';
import { expectWithinTolerance, hasFixture, normwiseRelError, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints') && hasFixture('clip-tokenizer');
let family: FixtureFamily;
let modelsDir: string;
let cacheDir: string;
let unet: BranchedGraph;
let text: BranchedGraph;
let engine: CheckpointEngineOptions;
let model: DiffusionModel;
const opened: TensorFile[] = [];

beforeAll(async () => {
  if (!available) return;
  family = await openFixtureFamily('checkpoints/sd15-tiny');
  modelsDir = await makeModelsDir('lora-branches-');
  const file = await addFixtureCheckpoint(modelsDir, 'checkpoints/sd15-tiny', 'sd15-tiny.safetensors', 'tiny.safetensors');
  const cache = new ConversionCache(path.join(modelsDir, '.cache'));
  engine = { cache, hashes: new ContentHashes(cache.root), tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR), floatType: 'float32', attention: 'contrib' };
  const loaded = await loadCheckpointModel({ id: 'tiny.safetensors', path: file, format: 'safetensors' }, engine, {});
  model = loaded.model;
  cacheDir = loaded.cacheDir;
  [unet, text] = await openBranchedGraphs(cache, path.basename(cacheDir), ['unet', 'text_encoder'], { executionProviders: ['cpu'] });
});
afterAll(async () => {
  await Promise.all([unet?.session.release(), text?.session.release(), model?.release()]);
  await Promise.all(opened.map((f) => f.close()));
  await family?.reference.close();
});

async function lora(file: string) {
  const f = await openSafetensors(file.startsWith('/') ? file : path.join(family.dir, file));
  opened.push(f);
  return parseLoraFile(f);
}

function index() {
  return loraTargetIndex([
    { graph: 'unet', kind: 'unet', initializers: unet.layout },
    { graph: 'text_encoder', kind: 'text_encoder', textEncoderIndex: 1, initializers: text.layout },
  ]);
}

const sites = () =>
  new Map([
    ['unet', unet.sites],
    ['text_encoder', text.sites],
  ]);

async function unetOut(session: OnnxModel): Promise<Float32Array> {
  const uc = family.case('sd15.unet.lora_1.0');
  const [sample, timestep, ehs] = await Promise.all(['sample', 'timestep', 'encoder_hidden_states'].map((r) => family.tensor(uc.inputs[r])));
  const out = await session.run({ sample: { data: sample.data, dims: sample.shape }, timestep: { data: timestep.data, dims: timestep.shape }, encoder_hidden_states: { data: ehs.data, dims: ehs.shape } });
  return out.out_sample.data;
}

async function textOut(session: OnnxModel): Promise<Float32Array> {
  const ids = await family.tensor(family.case('sd15.text_encoder.lora_1.0').inputs.input_ids);
  const te = await session.run({ input_ids: { data: ids.data, dims: ids.shape }, extra_token_embeddings: { data: new Float32Array(0), dims: [0, 32] } }, ['last_hidden_state']);
  return te.last_hidden_state.data;
}

describe.skipIf(!available)('LoRA branches on the tiny SD 1.x model (one session, every set)', () => {
  it('has a branch on every Linear and Conv the LoRA targets, and no LoRA gives the plain model', async () => {
    // The fixture LoRA's 102 modules (72 UNet, 30 text encoder) all land on branch sites.
    const idx = index();
    const file = await lora('lora/tiny-lora.safetensors');
    const targets = file.modules.map((m) => idx.get(m.name)!);
    expect(targets.filter((t) => t.graph === 'unet').every((t) => unet.sites.has(t.initializer))).toBe(true);
    expect(targets.filter((t) => t.graph === 'text_encoder').every((t) => text.sites.has(t.initializer))).toBe(true);
    // Strength 0: zero factors, exactly the base UNet's outputs (the fixture's plain case has the same inputs).
    const feeds = (await loraBranchFeeds([{ id: 'tiny', lora: file, strength: 0 }], idx, sites()))!;
    const uc = family.case('sd15.unet.sq');
    const got = await unetOut(unet.session.bind(feeds.get('unet')!));
    expectWithinTolerance(uc.id, got, (await family.tensor(uc.outputs.out)).data, uc.tolerance.rel);
  });

  for (const strength of ['1.0', '0.6']) {
    for (const file of ['lora/tiny-lora.safetensors', 'lora/tiny-lora-ldm-names.safetensors', 'lora/tiny-lora-diffusers.safetensors']) {
      it(`${path.basename(file)} at strength ${strength}: UNet and text encoder outputs from the shared session`, async () => {
        const feeds = (await loraBranchFeeds([{ id: 'tiny', lora: await lora(file), strength: Number(strength) }], index(), sites()))!;
        const uc = family.case(`sd15.unet.lora_${strength}`);
        expectWithinTolerance(uc.id, await unetOut(unet.session.bind(feeds.get('unet')!)), (await family.tensor(uc.outputs.out)).data, uc.tolerance.rel);
        const tc = family.case(`sd15.text_encoder.lora_${strength}`);
        expectWithinTolerance(tc.id, await textOut(text.session.bind(feeds.get('text_encoder')!)), (await family.tensor(tc.outputs.last_hidden_state)).data, tc.tolerance.rel);
      });
    }
  }

  it('a LoCon set (3×3 conv factors) plus a second LoRA matches the patched-weights path', async () => {
    // A LoCon module on a strided 3×3 conv and one on a resnet conv, generated from the model's own shapes.
    const convs = [...unet.sites.values()].filter((s) => s.kind === 'conv' && s.kernel[0] === 3);
    const picked = [convs[0], convs[Math.floor(convs.length / 2)], convs[convs.length - 1]];
    const idx = index();
    const moduleOf = (initializer: string) => [...idx.entries()].find(([k, t]) => t.initializer === initializer && k.startsWith('lora_unet_'))![0];
    let seed = 1;
    const rnd = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.2);
    const locon = path.join(modelsDir, 'locon.safetensors');
    await writeSafetensors(
      locon,
      picked.flatMap((s) => {
        const name = moduleOf(s.initializer);
        return [
          { key: `${name}.lora_down.weight`, dtype: 'F32' as const, shape: [3, s.in, 3, 3], values: () => rnd(3 * s.in * 9) },
          { key: `${name}.lora_up.weight`, dtype: 'F32' as const, shape: [s.out, 3, 1, 1], values: () => rnd(s.out * 3) },
          { key: `${name}.alpha`, dtype: 'F32' as const, shape: [], values: () => [1.5] },
        ];
      }),
    );
    const set = [
      { id: 'locon', lora: await lora(locon), strength: 0.9 },
      { id: 'tiny', lora: await lora('lora/tiny-lora.safetensors'), strength: -0.7 },
    ];
    const feeds = (await loraBranchFeeds(set, idx, sites()))!;
    const base = await loadBaseGraph(cacheDir, 'unet');
    const patches = await loraPatches(set, idx);
    const patched = await openPatchedGraph(base, patches.filter((p) => p.target.graph === 'unet'), {});
    try {
      const expected = await unetOut(patched.session);
      const got = await unetOut(unet.session.bind(feeds.get('unet')!));
      const plain = await unetOut((await loraBranchFeeds([{ id: 'tiny', lora: set[1].lora, strength: 0 }], idx, sites()).then((f) => unet.session.bind(f!.get('unet')!))));
      // The set changes the output, and the branches give the patched weights' result within float32 rounding.
      expect(normwiseRelError(plain, expected)).toBeGreaterThan(1e-2);
      expect(normwiseRelError(got, expected)).toBeLessThan(1e-5);
    } finally {
      await patched.session.release();
    }
  });

  it('the service (ModelVariants) applies sets as branches of one session: two sets switch without a new session, a set seen before is the same variant', async () => {
    const events: Array<{ type: string; lora?: string }> = [];
    const variants = new ModelVariants({ engine, sessionOptions: {}, onEvent: (e) => events.push(e) });
    const set = (rel: string, strength: number) => ({ loras: [{ id: path.basename(rel), path: path.join(family.dir, rel), param: 'loras[0].name', strength }], embeddings: [] });
    try {
      const a = await variants.acquire(model, set('lora/tiny-lora.safetensors', 1));
      const b = await variants.acquire(model, set('lora/tiny-lora-diffusers.safetensors', 0.6));
      for (const [lease, strength] of [[a, '1.0'], [b, '0.6']] as const) {
        const uc = family.case(`sd15.unet.lora_${strength}`);
        expectWithinTolerance(uc.id, await unetOut(lease.model.unet), (await family.tensor(uc.outputs.out)).data, uc.tolerance.rel);
        const tc = family.case(`sd15.text_encoder.lora_${strength}`);
        expectWithinTolerance(tc.id, await textOut(lease.model.textEncoder), (await family.tensor(tc.outputs.last_hidden_state)).data, tc.tolerance.rel);
      }
      // The plain model is untouched by the variants built on it.
      const uc = family.case('sd15.unet.sq');
      expectWithinTolerance(uc.id, await unetOut(model.unet), (await family.tensor(uc.outputs.out)).data, uc.tolerance.rel);
      a.release();
      b.release();
      const again = await variants.acquire(model, set('lora/tiny-lora.safetensors', 1));
      expect(again.model).toBe(a.model);
      again.release();
      expect(events.filter((e) => e.type === 'variant_built').map((e) => e.lora)).toEqual(['branches', 'branches']);
    } finally {
      await variants.close();
    }
  });
});
