/**
 * Textual inversion against diffusers' load_textual_inversion on the tiny SD 1.x model: the embedding in
 * AUTOMATIC1111 format (named by the file: `tiny-style` in the prompt) and in diffusers format (named by its
 * token `<tiny-style>`) give the case's token ids (the two vectors at positions 10 and 11) and its hidden states.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentHashes } from '../../gpu-service/src/checkpoints/content-hash';
import { ConversionCache } from '../../gpu-service/src/checkpoints/conversion-cache';
import { loadCheckpointModel } from '../../gpu-service/src/checkpoints/checkpoint-engine';
import { EmbeddingFormatError, readEmbeddingFile, vectorsFor } from '../../gpu-service/src/addons/embedding-file';
import { tokenizeWeightedPrompt } from '../../gpu-service/src/diffusion/prompt/chunk-prompt';
import { encodePromptPair, textualInversionSet } from '../../gpu-service/src/diffusion/text-conditioning';
import type { DiffusionModel } from '../../gpu-service/src/models/diffusion-model';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import { expectWithinTolerance, hasFixture, openFixtureFamily, type FixtureFamily } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, makeModelsDir, TOKENIZER_SUBDIR } from '../helpers/checkpoint-models-dir';

const available = hasFixture('checkpoints') && hasFixture('clip-tokenizer');
let family: FixtureFamily;
let model: DiffusionModel;

beforeAll(async () => {
  if (!available) return;
  family = await openFixtureFamily('checkpoints/sd15-tiny');
  const modelsDir = await makeModelsDir('ti-');
  const file = await addFixtureCheckpoint(modelsDir, 'checkpoints/sd15-tiny', 'sd15-tiny.safetensors', 'tiny.safetensors');
  const cache = new ConversionCache(path.join(modelsDir, '.cache'));
  model = (
    await loadCheckpointModel(
      { id: 'tiny.safetensors', path: file, format: 'safetensors' },
      { cache, hashes: new ContentHashes(cache.root), tokenizerDir: path.join(modelsDir, TOKENIZER_SUBDIR), floatType: 'float32', attention: 'contrib' },
      {},
    )
  ).model;
});
afterAll(async () => {
  await model?.release();
  await family?.reference.close();
});

async function embedding(rel: string, name: string) {
  const f = await openSafetensors(path.join(family.dir, rel));
  try {
    const v = vectorsFor(await readEmbeddingFile(f), 'clip_l', model.hiddenSize, name);
    return { name, vectors: v.data, count: v.count };
  } finally {
    await f.close();
  }
}

describe.skipIf(!available)('textual inversion on the tiny SD 1.x model', () => {
  const cases = [
    { file: 'embeddings/tiny-style.safetensors', name: 'tiny-style', prompt: 'a portrait of a cat in the style of tiny-style, soft light' },
    { file: 'embeddings/tiny-style-diffusers.safetensors', name: '<tiny-style>', prompt: 'a portrait of a cat in the style of <tiny-style>, soft light' },
  ];
  for (const c of cases) {
    it(`${path.basename(c.file)} named "${c.name}": the case's ids and hidden states`, async () => {
      const tc = family.case('sd15.text_encoder.ti');
      const ti = textualInversionSet(model, [await embedding(c.file, c.name)]);
      const chunks = tokenizeWeightedPrompt(model.tokenizer, c.prompt, { embeddings: ti.embeddings }).chunks;
      expect(chunks).toHaveLength(1);
      expect(chunks[0].ids).toEqual(tc.ids);
      const { cond } = await encodePromptPair(model, c.prompt, '', undefined, ti);
      expectWithinTolerance(tc.id, cond.hidden, (await family.tensor(tc.outputs.last_hidden_state)).data, tc.tolerance.rel);
    });
  }

  it('emphasis applies to the embedding tokens, and an embedding never straddles two chunks', async () => {
    const ti = textualInversionSet(model, [await embedding('embeddings/tiny-style.safetensors', 'tiny-style')]);
    const weighted = tokenizeWeightedPrompt(model.tokenizer, 'a cat, (tiny-style:1.3)', { embeddings: ti.embeddings }).chunks[0];
    const at = weighted.ids.indexOf(ti.embeddings[0].vectorIds[0]);
    expect(weighted.weights.slice(at, at + 2)).toEqual([1.3, 1.3]);
    // 74 words fill the chunk but one slot: the two vectors move to the next chunk together.
    const long = `${Array(74).fill('cat').join(' ')} tiny-style`;
    const chunks = tokenizeWeightedPrompt(model.tokenizer, long, { embeddings: ti.embeddings }).chunks;
    expect(chunks).toHaveLength(2);
    expect(chunks[1].ids.slice(1, 3)).toEqual(ti.embeddings[0].vectorIds);
  });

  it('an embedding of another width is refused as being for another architecture', async () => {
    const f = await openSafetensors(path.join(family.dir, 'embeddings/tiny-style.safetensors'));
    try {
      const e = await readEmbeddingFile(f);
      expect(() => vectorsFor(e, 'clip_l', 768, 'tiny-style')).toThrow(EmbeddingFormatError);
      expect(() => vectorsFor(e, 'clip_l', 768, 'tiny-style')).toThrow(/32-wide vectors; this model's text encoder takes 768/);
    } finally {
      await f.close();
    }
  });
});
