/**
 * The `sd15` benchmark's LoRA (issue 13's speed case): a kohya-ss / A1111 file (`lora_unet_*` / `lora_te_*` with
 * `lora_down` / `lora_up` / `alpha`, LDM module names, F16) of the rank asked for, generated from the benchmark
 * checkpoint's own header, so it targets every layer a typical SD 1.5 LoRA trains: each spatial transformer's
 * proj_in / proj_out, attn1 / attn2 to_q / to_k / to_v / to_out.0, ff.net.0.proj, ff.net.2, and each text-encoder
 * layer's q / k / v / out_proj, fc1, fc2. Values are small deterministic pseudo-random numbers (the timing does
 * not depend on them); `seed` makes a different LoRA of the same shape (a switch between two sets).
 */
import { readSafetensorsHeader } from '../../../gpu-service/src/weights/safetensors';
import { writeSafetensors, type TensorToWrite } from '../../../gpu-service/src/weights/safetensors-writer';

const UNET_PREFIX = 'model.diffusion_model.';
const TEXT_PREFIX = 'cond_stage_model.transformer.';
const UNET_TARGET = /\.(proj_in|proj_out|attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2))\.weight$/;
const TEXT_TARGET = /\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight$/;

/** What writeBenchLora wrote. */
export interface BenchLoraFile {
  path: string;
  rank: number;
  /** Modules patched (UNet + text encoder). */
  modules: number;
  /** Parameters of the low-rank factors. */
  parameters: number;
  bytes: number;
}

/** A deterministic value in [-scale, scale] (xorshift; the same file for the same seed). */
function valuesFor(count: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(count);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = ((x / 0xffffffff) * 2 - 1) * scale;
  }
  return out;
}

/**
 * Write a rank-`rank` kohya LoRA for the LDM single file at `checkpoint`.
 * @throws Error when the checkpoint has no layer a LoRA targets (not an SD 1.x/2.x LDM file).
 */
export async function writeBenchLora(checkpoint: string, path: string, rank: number, seed: number): Promise<BenchLoraFile> {
  const { entries } = await readSafetensorsHeader(checkpoint);
  const tensors: TensorToWrite[] = [];
  let modules = 0;
  let parameters = 0;
  for (const [key, entry] of entries) {
    const isUnet = key.startsWith(UNET_PREFIX) && UNET_TARGET.test(key);
    const isText = key.startsWith(TEXT_PREFIX) && TEXT_TARGET.test(key);
    if (!isUnet && !isText) continue;
    // [out, in] for Linear, [out, in, 1, 1] for SD 1.x's 1×1-conv proj_in/proj_out.
    const [out, inputs] = entry.shape;
    const conv = entry.shape.length === 4 ? [1, 1] : [];
    const module = isUnet ? `lora_unet_${key.slice(UNET_PREFIX.length, -'.weight'.length)}` : `lora_te_${key.slice(TEXT_PREFIX.length, -'.weight'.length)}`;
    const name = module.replace(/\./g, '_');
    const s = seed * 1009 + modules;
    tensors.push(
      { key: `${name}.lora_down.weight`, dtype: 'F16', shape: [rank, inputs, ...conv], values: () => valuesFor(rank * inputs, s, 0.05) },
      { key: `${name}.lora_up.weight`, dtype: 'F16', shape: [out, rank, ...conv], values: () => valuesFor(out * rank, s + 7, 0.05) },
      { key: `${name}.alpha`, dtype: 'F16', shape: [], values: () => new Float32Array([rank]) },
    );
    modules++;
    parameters += rank * (inputs + out);
  }
  if (modules === 0) throw new Error(`${checkpoint}: no layer a LoRA targets (expected an SD 1.x/2.x LDM single file)`);
  const bytes = await writeSafetensors(path, tensors, { ss_network_dim: String(rank), ss_network_alpha: String(rank), ss_base_model_version: 'sd_v1' });
  return { path, rank, modules, parameters, bytes };
}
