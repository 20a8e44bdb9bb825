/**
 * LoRA against diffusers' load_lora_weights on the tiny SD 1.x model: the same LoRA in kohya names (diffusers
 * module paths), kohya with LDM names, and PEFT format, at strengths 1.0 and 0.6, patched into the built UNet and
 * text encoder, must reproduce upstream's outputs within the fixtures' tolerance.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentHashes } from '../../gpu-service/src/checkpoints/content-hash';
import { ConversionCache } from '../../gpu-service/src/checkpoints/conversion-cache';
import { loadCheckpointModel } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { LoraFormatError, parseLoraFile } from '../../gpu-service/src/addons/lora-file';
import { LoraMismatchError, loraPatches } from '../../gpu-service/src/addons/lora-patch';
import { loraTargetIndex } from '../../gpu-service/src/addons/lora-targets';
import { loadBaseGraph, openPatchedGraph, type BaseGraph } from '../../gpu-service/src/addons/patched-graphs';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { writeSafetensors } from '../../gpu-service/src/weights/safetensors-writer';
import type { TensorFile } from '../../gpu-service/src/weights/tensor-file';
import { expectWithinTolerance, hasFixture, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints') && hasFixture('clip-tokenizer');
let family: FixtureFamily;
let unet: BaseGraph;
let text: BaseGraph;
let modelsDir: string;
const opened: TensorFile[] = [];

beforeAll(async () => {
  if (!available) return;
  family = await openFixtureFamily('checkpoints/sd15-tiny');
  modelsDir = await makeModelsDir('lora-');
  const file = await addFixtureCheckpoint(modelsDir, 'checkpoints/sd15-tiny', 'sd15-tiny.safetensors', 'tiny.safetensors');
  const cache = new ConversionCache(path.join(modelsDir, '.cache'));
  const loaded = await loadCheckpointModel(
    { id: 'tiny.safetensors', path: file, format: 'safetensors' },
    { cache, hashes: new ContentHashes(cache.root), tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR), floatType: 'float32', attention: 'contrib' },
    {},
  );
  await loaded.model.release();
  [unet, text] = await Promise.all([loadBaseGraph(loaded.cacheDir, 'unet'), loadBaseGraph(loaded.cacheDir, 'text_encoder')]);
});
afterAll(async () => {
  await Promise.all(opened.map((f) => f.close()));
  await family?.reference.close();
});

async function lora(rel: string) {
  const f = await openSafetensors(path.join(family.dir, rel));
  opened.push(f);
  return parseLoraFile(f);
}

function index() {
  return loraTargetIndex([
    { graph: 'unet', kind: 'unet', initializers: unet.layout },
    { graph: 'text_encoder', kind: 'text_encoder', textEncoderIndex: 1, initializers: text.layout },
  ]);
}

describe.skipIf(!available)('LoRA on the tiny SD 1.x model (diffusers load_lora_weights references)', () => {
  for (const strength of ['1.0', '0.6']) {
    for (const file of ['lora/tiny-lora.safetensors', 'lora/tiny-lora-ldm-names.safetensors', 'lora/tiny-lora-diffusers.safetensors']) {
      it(`${path.basename(file)} at strength ${strength}: UNet and text encoder outputs`, async () => {
        const patches = await loraPatches([{ id: 'tiny', lora: await lora(file), strength: Number(strength) }], index());
        // Every module of the file found its target (the LoRA has 102 modules: 72 UNet, 30 text encoder).
        expect(patches.length).toBe(102);
        const u = await openPatchedGraph(unet, patches.filter((p) => p.target.graph === 'unet'), {});
        const t = await openPatchedGraph(text, patches.filter((p) => p.target.graph === 'text_encoder'), {});
        try {
          const uc = family.case(`sd15.unet.lora_${strength}`);
          const [sample, timestep, ehs] = await Promise.all(['sample', 'timestep', 'encoder_hidden_states'].map((r) => family.tensor(uc.inputs[r])));
          const out = await u.session.run({ sample: { data: sample.data, dims: sample.shape }, timestep: { data: timestep.data, dims: timestep.shape }, encoder_hidden_states: { data: ehs.data, dims: ehs.shape } });
          expectWithinTolerance(uc.id, out.out_sample.data, (await family.tensor(uc.outputs.out)).data, uc.tolerance.rel);
          const tc = family.case(`sd15.text_encoder.lora_${strength}`);
          const ids = await family.tensor(tc.inputs.input_ids);
          const te = await t.session.run({ input_ids: { data: ids.data, dims: ids.shape }, extra_token_embeddings: { data: new Float32Array(0), dims: [0, 32] } }, ['last_hidden_state']);
          expectWithinTolerance(tc.id, te.last_hidden_state.data, (await family.tensor(tc.outputs.last_hidden_state)).data, tc.tolerance.rel);
        } finally {
          await Promise.all([u.session.release(), t.session.release()]);
        }
      });
    }
  }

  it('two LoRAs add up: 0.6 + 0.4 of the same file is strength 1.0', async () => {
    const a = await lora('lora/tiny-lora.safetensors');
    const b = await lora('lora/tiny-lora-diffusers.safetensors');
    const patches = await loraPatches([{ id: 'a', lora: a, strength: 0.6 }, { id: 'b', lora: b, strength: 0.4 }], index());
    const u = await openPatchedGraph(unet, patches.filter((p) => p.target.graph === 'unet'), {});
    try {
      const uc = family.case('sd15.unet.lora_1.0');
      const [sample, timestep, ehs] = await Promise.all(['sample', 'timestep', 'encoder_hidden_states'].map((r) => family.tensor(uc.inputs[r])));
      const out = await u.session.run({ sample: { data: sample.data, dims: sample.shape }, timestep: { data: timestep.data, dims: timestep.shape }, encoder_hidden_states: { data: ehs.data, dims: ehs.shape } });
      expectWithinTolerance('0.6 + 0.4', out.out_sample.data, (await family.tensor(uc.outputs.out)).data, uc.tolerance.rel);
    } finally {
      await u.session.release();
    }
  });

  it('a LoRA matching nothing, one of another shape, and unsupported network types are refused with the reason', async () => {
    const dir = modelsDir;
    const nothing = path.join(dir, 'nothing.safetensors');
    await writeSafetensors(nothing, [
      { key: 'lora_unet_no_such_layer.lora_down.weight', dtype: 'F32', shape: [2, 8], values: () => new Float32Array(16) },
      { key: 'lora_unet_no_such_layer.lora_up.weight', dtype: 'F32', shape: [8, 2], values: () => new Float32Array(16) },
    ]);
    const n = await openSafetensors(nothing);
    opened.push(n);
    await expect(loraPatches([{ id: 'nothing', lora: await parseLoraFile(n), strength: 1 }], index())).rejects.toThrow(LoraMismatchError);
    await expect(loraPatches([{ id: 'nothing', lora: await parseLoraFile(n), strength: 1 }], index())).rejects.toThrow(/matches no layer of this model/);
    const wrong = path.join(dir, 'wrong.safetensors');
    await writeSafetensors(wrong, [
      { key: 'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight', dtype: 'F32', shape: [2, 64], values: () => new Float32Array(128) },
      { key: 'lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight', dtype: 'F32', shape: [64, 2], values: () => new Float32Array(128) },
    ]);
    const w = await openSafetensors(wrong);
    opened.push(w);
    await expect(loraPatches([{ id: 'wrong', lora: await parseLoraFile(w), strength: 1 }], index())).rejects.toThrow(/does not fit this model.*\[64, 64\].*\[32, 32, 1, 1\]/);
    const dora = path.join(dir, 'dora.safetensors');
    await writeSafetensors(dora, [{ key: 'lora_unet_x.dora_scale', dtype: 'F32', shape: [1], values: () => [1] }]);
    const d = await openSafetensors(dora);
    opened.push(d);
    await expect(parseLoraFile(d)).rejects.toThrow(LoraFormatError);
    await expect(parseLoraFile(d)).rejects.toThrow(/DoRA \(dora_scale\) is not supported/);
  });
});
