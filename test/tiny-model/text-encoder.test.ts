import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_COLOURS, TINY_HIDDEN_SIZE } from '../../scripts/tiny-model/constants';
import { tinyMu } from '../../scripts/tiny-model/closed-form';
import { tinyColourLatent, tinyDecodeLatentPixel, tinyGreyLatent } from '../../scripts/tiny-model/vae-maps';
import { TINY_SCALING_FACTOR } from '../../scripts/tiny-model/constants';
import { generateVariants, mergeRanks, openPart, promptIds, readTokenizer, values } from './helpers';

const H = TINY_HIDDEN_SIZE;
let models: Awaited<ReturnType<typeof generateVariants>>;
let encoder: ort.InferenceSession;
let vocab: Record<string, number>;
let ranks: Map<string, number>;

async function encode(prompt: string, session = encoder, idsType: 'int32' | 'int64' = 'int32') {
  const ids = promptIds(prompt, vocab, ranks);
  const tensor = idsType === 'int32' ? new ort.Tensor('int32', Int32Array.from(ids), [1, 77]) : new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, 77]);
  return { ids, out: await session.run({ input_ids: tensor }) };
}

/** Decoded RGB in [−1, 1] of the mu the UNet derives from this prompt's hidden states. */
async function promptColour(prompt: string, output = 'last_hidden_state'): Promise<number[]> {
  const { out } = await encode(prompt);
  const mu = tinyMu(values(out[output]), 1, 77);
  return tinyDecodeLatentPixel(Array.from(mu, (v) => v / TINY_SCALING_FACTOR));
}

beforeAll(async () => {
  models = await generateVariants(['tiny-analytic', 'tiny-analytic-external', 'tiny-analytic-no-hidden-states']);
  const dir = path.join(models.root, 'tiny-analytic');
  encoder = await openPart(dir, 'text_encoder');
  ({ vocab } = await readTokenizer(dir));
  ranks = mergeRanks((await readTokenizer(dir)).mergeLines);
});
afterAll(async () => {
  await models.cleanup();
});

describe('tiny text encoder', () => {
  it('declares CLIP-like inputs and outputs', () => {
    expect(encoder.inputNames).toEqual(['input_ids']);
    expect(encoder.outputNames).toEqual(['last_hidden_state', 'pooler_output', 'hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'hidden_states.3', 'hidden_states.4']);
    const meta = encoder.outputMetadata.find((m) => m.name === 'last_hidden_state');
    expect(meta && meta.isTensor && meta.shape).toEqual(['batch', 'sequence', H]);
  });

  it('gives a colour word its latent colour and a count of 1; other tokens count 0; bos/eos rows 0', async () => {
    const { ids, out } = await encode('a red apple');
    const hidden = values(out.last_hidden_state);
    expect(out.last_hidden_state.dims).toEqual([1, 77, H]);
    const red = tinyColourLatent(TINY_COLOURS.red);
    for (let t = 0; t < 77; t++) {
      const row = Array.from(hidden.subarray(t * H, (t + 1) * H));
      if (ids[t] === vocab['red</w>']) {
        red.forEach((v, d) => expect(row[d]).toBeCloseTo(v, 6));
        expect(row[4]).toBe(1);
        expect(row.slice(5).every((v) => v === 0)).toBe(true);
      } else if (ids[t] === vocab['<|startoftext|>'] || ids[t] === vocab['<|endoftext|>']) {
        expect(row.every((v) => v === 0)).toBe(true);
      } else {
        expect(row.slice(0, 5).every((v) => v === 0)).toBe(true);
        expect(row.slice(5).some((v) => v !== 0)).toBe(true);
      }
    }
  });

  it('makes each colour prompt decode to its colour through mu, and a colourless prompt near grey', async () => {
    const expected: Record<string, number[]> = {
      red: [1, -1, -1], green: [-1, 1, -1], blue: [-1, -1, 1], yellow: [1, 1, -1], white: [1, 1, 1], black: [-1, -1, -1],
    };
    for (const [word, rgb] of Object.entries(expected)) {
      const colour = await promptColour(`a ${word} apple`);
      // The ordinary words add only a faint tint.
      colour.forEach((v, i) => expect(Math.abs(v - rgb[i]), `${word} channel ${i}`).toBeLessThan(0.1));
    }
    for (const v of await promptColour('a photo of a cat')) expect(Math.abs(v)).toBeLessThan(0.1);
    expect(await promptColour('a cat')).not.toEqual(await promptColour('a dog'));
  });

  it('averages several colour words', async () => {
    const [r, g, b] = await promptColour('red and blue');
    expect(r).toBeCloseTo(0, 1);
    expect(g).toBeCloseTo(-1, 1);
    expect(b).toBeCloseTo(0, 1);
  });

  it('returns pooler_output as the sum of last_hidden_state over the sequence', async () => {
    const { out } = await encode('a green tree');
    const hidden = values(out.last_hidden_state);
    const pooled = values(out.pooler_output);
    expect(out.pooler_output.dims).toEqual([1, H]);
    for (let d = 0; d < H; d++) {
      let sum = 0;
      for (let t = 0; t < 77; t++) sum += hidden[t * H + d];
      expect(pooled[d]).toBeCloseTo(sum, 5);
    }
  });

  it('gives earlier hidden states paler colours (so clip_skip changes the image a little); the last equals last_hidden_state', async () => {
    const { out } = await encode('a red apple');
    expect(values(out['hidden_states.4'])).toEqual(values(out.last_hidden_state));
    const grey = tinyDecodeLatentPixel(tinyGreyLatent().map((v) => v / TINY_SCALING_FACTOR));
    grey.forEach((v) => expect(v).toBeCloseTo(0, 9));
    const last = await promptColour('a red apple', 'hidden_states.4');
    const skip2 = await promptColour('a red apple', 'hidden_states.3');
    expect(skip2).not.toEqual(last);
    // c_3 = 0.9: 90% of the way from grey to red, still clearly red.
    expect(skip2[0]).toBeCloseTo(0.9 * last[0], 1);
    expect(skip2[0]).toBeGreaterThan(0.8);
    expect(skip2[1]).toBeLessThan(-0.8);
  });

  it('reads int64 input_ids in the external-data variant and gives the same outputs', async () => {
    const ext = await openPart(path.join(models.root, 'tiny-analytic-external'), 'text_encoder');
    expect(ext.inputMetadata[0]).toMatchObject({ name: 'input_ids', type: 'int64' });
    const a = await encode('a blue sky with a yellow sun');
    const b = await encode('a blue sky with a yellow sun', ext, 'int64');
    for (const name of encoder.outputNames) expect(values(b.out[name]), name).toEqual(values(a.out[name]));
  });

  it('has no hidden_states outputs in the no-hidden-states variant', async () => {
    const plain = await openPart(path.join(models.root, 'tiny-analytic-no-hidden-states'), 'text_encoder');
    expect(plain.outputNames).toEqual(['last_hidden_state', 'pooler_output']);
  });
});
