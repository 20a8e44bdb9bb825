/**
 * LoRA files: which modules a file patches and with which factors, in the formats people have:
 * - kohya-ss / AUTOMATIC1111 (`lora_unet_<module>` / `lora_te_<module>` / SDXL `lora_te1_` `lora_te2_`, with
 *   `.lora_down.weight`, `.lora_up.weight`, `.alpha`; module paths in diffusers or LDM naming with `.` → `_`);
 *   LoCon conv layers use the same keys with 4-D factors;
 * - diffusers / PEFT (`unet.<module>.lora_A.weight` / `.lora_B.weight`, `text_encoder.…`, `text_encoder_2.…`; alpha
 *   in the header's `lora_adapter_metadata` (PEFT LoraConfig `lora_alpha` and `r`) or per module `.alpha`);
 * - LyCORIS LoHa (`.hada_w1_a/b`, `.hada_w2_a/b`, `.alpha`) and LoKr (`.lokr_w1` or `.lokr_w1_a/b`, `.lokr_w2` or
 *   `.lokr_w2_a/b`, `.alpha`).
 * Anything else (DoRA `dora_scale`, Tucker `lora_mid` / `hada_t1`, OFT/BOFT, full `diff` weights, GLoRA) is refused
 * with a message naming it, never silently ignored.
 *
 * ΔW per network (LyCORIS `lycoris/modules/*`, kohya `networks/lora.py`), scale = alpha / rank:
 * - LoRA: ΔW = scale · up · down (rank = down's first dim);
 * - LoHa: ΔW = scale · (w1a · w1b) ⊙ (w2a · w2b) (rank = w1b's first dim);
 * - LoKr: ΔW = scale · kron(w1, w2), w1 = w1a · w1b when factorised, same for w2; scale = alpha / rank only when
 *   w2 (or w1) is factorised (rank = that factor's inner dim), else 1.
 */
import type { TensorFile } from '../weights/tensor-file';

/** The network types this engine applies. */
export type LoraNetwork = 'lora' | 'loha' | 'lokr';

/** One patched module of a LoRA file. */
export interface LoraModule {
  /** The module name as the file spells it, without the factor suffix (`lora_unet_down_blocks_0_…`, `unet.down_blocks.0.…`). */
  name: string;
  network: LoraNetwork;
  /** Factor role → key in the file (`up`, `down`; `w1a`, `w1b`, `w2a`, `w2b`; `w1`, `w2`). */
  factors: Record<string, string>;
  /** alpha / rank (1 where the format has no alpha). */
  scale: number;
}

/** A parsed LoRA file. */
export interface LoraFile {
  file: TensorFile;
  modules: LoraModule[];
  /** The base model the file says it was trained for (kohya `ss_base_model_version`: `sd_v1`, `sdxl_base_v1-0`, …). */
  baseModel?: string;
}

/** A LoRA file that cannot be applied; the message names the key and the rule. */
export class LoraFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoraFormatError';
  }
}

const SUFFIXES: Array<[RegExp, LoraNetwork, string]> = [
  [/\.lora_down\.weight$/, 'lora', 'down'],
  [/\.lora_up\.weight$/, 'lora', 'up'],
  [/\.lora_A\.weight$/, 'lora', 'down'],
  [/\.lora_B\.weight$/, 'lora', 'up'],
  [/\.lora_A\.default\.weight$/, 'lora', 'down'],
  [/\.lora_B\.default\.weight$/, 'lora', 'up'],
  [/\.hada_w1_a$/, 'loha', 'w1a'],
  [/\.hada_w1_b$/, 'loha', 'w1b'],
  [/\.hada_w2_a$/, 'loha', 'w2a'],
  [/\.hada_w2_b$/, 'loha', 'w2b'],
  [/\.lokr_w1$/, 'lokr', 'w1'],
  [/\.lokr_w1_a$/, 'lokr', 'w1a'],
  [/\.lokr_w1_b$/, 'lokr', 'w1b'],
  [/\.lokr_w2$/, 'lokr', 'w2'],
  [/\.lokr_w2_a$/, 'lokr', 'w2a'],
  [/\.lokr_w2_b$/, 'lokr', 'w2b'],
];

const REFUSED: Array<[RegExp, string]> = [
  [/\.dora_scale$/, 'DoRA (dora_scale)'],
  [/\.lora_mid\.weight$/, 'LoCon with Tucker decomposition (lora_mid)'],
  [/\.hada_t[12]$/, 'LoHa with Tucker decomposition (hada_t1/hada_t2)'],
  [/\.lokr_t2$/, 'LoKr with Tucker decomposition (lokr_t2)'],
  [/\.oft_(blocks|diag)$|\.oft_R\b/, 'OFT'],
  [/\.boft_/, 'BOFT'],
  [/\.diff(_b)?$/, 'full weight differences (diff)'],
  [/\.(a|b)[12]\.weight$/, 'GLoRA'],
];

/** PEFT `lora_adapter_metadata`: per component prefix, alpha and rank. */
function peftAlphas(metadata: Readonly<Record<string, string>>): Map<string, { alpha?: number; r?: number }> {
  const out = new Map<string, { alpha?: number; r?: number }>();
  const raw = metadata.lora_adapter_metadata;
  if (!raw) return out;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return out;
  }
  for (const [k, v] of Object.entries(parsed)) {
    const m = /^(.*)\.(lora_alpha|r)$/.exec(k);
    if (!m || typeof v !== 'number') continue;
    const entry = out.get(m[1]) ?? {};
    if (m[2] === 'lora_alpha') entry.alpha = v;
    else entry.r = v;
    out.set(m[1], entry);
  }
  return out;
}

/**
 * Group a LoRA file's tensors into modules with their scale.
 * @throws LoraFormatError for an unsupported network type, a module with missing factors, or a file without
 *         any LoRA module.
 */
export async function parseLoraFile(file: TensorFile): Promise<LoraFile> {
  const modules = new Map<string, { network: LoraNetwork; factors: Record<string, string>; alphaKey?: string }>();
  for (const key of file.entries.keys()) {
    const refused = REFUSED.find(([re]) => re.test(key));
    if (refused) throw new LoraFormatError(`${key}: ${refused[1]} is not supported (supported: LoRA/LoCon, LyCORIS LoHa and LoKr)`);
    if (key.endsWith('.alpha')) {
      const name = key.slice(0, -'.alpha'.length);
      const m = modules.get(name) ?? { network: 'lora' as LoraNetwork, factors: {} };
      m.alphaKey = key;
      modules.set(name, m);
      continue;
    }
    const hit = SUFFIXES.find(([re]) => re.test(key));
    if (!hit) continue;
    const name = key.replace(hit[0], '');
    const m = modules.get(name) ?? { network: hit[1], factors: {} };
    m.network = hit[1];
    m.factors[hit[2]] = key;
    modules.set(name, m);
  }
  const alphas = peftAlphas(file.metadata);
  const out: LoraModule[] = [];
  for (const [name, m] of modules) {
    if (Object.keys(m.factors).length === 0) continue; // an alpha without factors (some trainers write them for every module)
    const need = m.network === 'lora' ? ['up', 'down'] : m.network === 'loha' ? ['w1a', 'w1b', 'w2a', 'w2b'] : [];
    for (const f of need) if (!m.factors[f]) throw new LoraFormatError(`LoRA module ${name} has no ${f} factor`);
    if (m.network === 'lokr') {
      if (!m.factors.w1 && !(m.factors.w1a && m.factors.w1b)) throw new LoraFormatError(`LoKr module ${name} has neither lokr_w1 nor lokr_w1_a/b`);
      if (!m.factors.w2 && !(m.factors.w2a && m.factors.w2b)) throw new LoraFormatError(`LoKr module ${name} has neither lokr_w2 nor lokr_w2_a/b`);
    }
    const rankKey = m.network === 'lora' ? m.factors.down : m.network === 'loha' ? m.factors.w1b : (m.factors.w2b ?? m.factors.w1b);
    const rank = rankKey ? file.entries.get(rankKey)!.shape[0] : undefined;
    let alpha: number | undefined;
    if (m.alphaKey) alpha = (await file.readFloat32(m.alphaKey))[0];
    else {
      const prefix = [...alphas.keys()].find((p) => name.startsWith(`${p}.`));
      const a = prefix ? alphas.get(prefix) : undefined;
      if (a?.alpha !== undefined) alpha = a.alpha;
    }
    // No alpha: alpha = rank (scale 1), the kohya and PEFT default; LoKr without factorised halves has scale 1.
    const scale = rank && alpha !== undefined ? alpha / rank : 1;
    out.push({ name, network: m.network, factors: m.factors, scale });
  }
  if (out.length === 0) throw new LoraFormatError('no LoRA modules (lora_down/lora_up, lora_A/lora_B, hada_*, lokr_* tensors) in the file');
  return { file, modules: out, baseModel: file.metadata.ss_base_model_version };
}
