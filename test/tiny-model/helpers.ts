/**
 * Test helpers for the tiny model suites: temporary model folders, an independent CLIP BPE
 * encoder (a restatement of openai/CLIP `simple_tokenizer.py`'s `bpe`, ASCII words only), and
 * tensor conversion that understands float16.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { generateTinyModel, TINY_VARIANTS } from '../../scripts/tiny-model/generate';
import { fromFloat16Bits as float16BitsToNumber, toFloat16Bits as float32ToFloat16Bits } from '../../gpu-service/src/onnx/float16';

/** A temporary directory holding the named variants (call `cleanup` in afterAll). */
export async function generateVariants(names: readonly string[]): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tiny-model-test-'));
  for (const name of names) await generateTinyModel(path.join(root, name), TINY_VARIANTS[name]);
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** Opens one ONNX part (text_encoder, unet, vae_decoder, vae_encoder) of a model folder from its path. */
export function openPart(modelDir: string, part: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path.join(modelDir, part, 'model.onnx'));
}

/** The tensor's values as float64 numbers (float16 bit patterns decoded). */
export function values(tensor: ort.Tensor): Float64Array {
  if (tensor.type === 'float16') return Float64Array.from(tensor.data as Uint16Array, float16BitsToNumber);
  return Float64Array.from(tensor.data as ArrayLike<number>);
}

/** A float tensor of the given element type ('float32' or 'float16') from numbers. */
export function floatTensor(type: 'float32' | 'float16', data: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  if (type === 'float16') return new ort.Tensor('float16', Uint16Array.from(data, float32ToFloat16Bits), dims);
  return new ort.Tensor('float32', Float32Array.from(data), dims);
}

/** The element type of input `name` from the session metadata. */
export function inputType(session: ort.InferenceSession, name: string): string {
  const meta = session.inputMetadata.find((m) => m.name === name);
  if (!meta || !meta.isTensor) throw new Error(`no tensor input ${name}`);
  return meta.type;
}

/** The model folder's tokenizer files, parsed. */
export async function readTokenizer(modelDir: string): Promise<{ vocab: Record<string, number>; mergeLines: string[] }> {
  const vocab = JSON.parse(await readFile(path.join(modelDir, 'tokenizer', 'vocab.json'), 'utf8')) as Record<string, number>;
  const mergeLines = (await readFile(path.join(modelDir, 'tokenizer', 'merges.txt'), 'utf8')).split('\n');
  return { vocab, mergeLines };
}

/**
 * CLIP's byte-pair encoding of one lower-case ASCII word: start from its characters with `</w>`
 * on the last, repeatedly merge every occurrence (left to right) of the adjacent pair with the
 * lowest merge rank, until no pair has a rank.
 */
export function clipBpe(word: string, ranks: ReadonlyMap<string, number>): string[] {
  let symbols = [...word.slice(0, -1)].concat(`${word.slice(-1)}</w>`);
  for (;;) {
    let best: [string, string] | undefined;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const rank = ranks.get(`${symbols[i]} ${symbols[i + 1]}`);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = [symbols[i], symbols[i + 1]];
      }
    }
    if (!best) return symbols;
    const merged: string[] = [];
    for (let i = 0; i < symbols.length; i++) {
      if (i + 1 < symbols.length && symbols[i] === best[0] && symbols[i + 1] === best[1]) {
        merged.push(best[0] + best[1]);
        i += 1;
      } else merged.push(symbols[i]);
    }
    symbols = merged;
  }
}

/** Merge ranks from merges.txt lines (header skipped). */
export function mergeRanks(mergeLines: readonly string[]): Map<string, number> {
  const ranks = new Map<string, number>();
  mergeLines.slice(1).filter((l) => l.length > 0).forEach((line, rank) => ranks.set(line, rank));
  return ranks;
}

/**
 * input_ids for a prompt of lower-case ASCII words separated by spaces, SD style:
 * bos, the words' BPE tokens, eos, padded with eos to 77.
 */
export function promptIds(prompt: string, vocab: Record<string, number>, ranks: ReadonlyMap<string, number>): number[] {
  const ids = [vocab['<|startoftext|>']];
  for (const word of prompt.split(/\s+/).filter(Boolean)) for (const token of clipBpe(word, ranks)) ids.push(vocab[token]);
  ids.push(vocab['<|endoftext|>']);
  while (ids.length < 77) ids.push(vocab['<|endoftext|>']);
  return ids;
}

/** Largest |a_i − b_i| / (atol + rtol·|b_i|); ≤ 1 means "close". */
export function worstRatio(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i])));
  return worst;
}

/** Deterministic standard normals (Box–Muller over mulberry32) for test inputs. */
export function normals(count: number, seed: number): Float64Array {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}
