/**
 * What each family's checkpoints leave unsaid, as the families' original configs say it (the LDM / sgm yaml
 * files `v1-inference.yaml`, `v2-inference(-v).yaml`, `sd_xl_base.yaml`, `sd_xl_refiner.yaml`, and ComfyUI's
 * `supported_models.py`). Used only where neither the file's sidecar nor a diffusers folder's configs say
 * otherwise (model-spec.ts applies them in that order).
 *
 * | family | UNet heads | text encoders | pad token | VAE scaling | native size | prediction |
 * |---|---|---|---|---|---|---|
 * | sd1 | 8 per level | CLIP ViT-L, quick_gelu, last layer | `<|endoftext|>` (eos) | 0.18215 | 512² | epsilon |
 * | sd2 | 64-wide | OpenCLIP ViT-H, gelu, penultimate layer | `!` (id 0) | 0.18215 | 768² (v) / 512² (eps) | v for 768-v (heuristic) |
 * | sdxl | 64-wide | CLIP-L + OpenCLIP bigG, penultimate, no final norm | eos / `!` | 0.13025 | 1024² | epsilon |
 * | sdxl-refiner | 64-wide | OpenCLIP bigG | `!` | 0.13025 | 1024² | epsilon |
 *
 * Every family's noise schedule is SD's scaled_linear β 0.00085 → 0.012 over 1000 steps.
 */
import { SD15_SCHEDULER_CONFIG } from '../diffusion/schedules/model-schedule';
import type { ClipTextFamily } from './detect/clip-text-config';
import type { ModelFamily, TextEncoderLocation } from './detect/family';
import { UNET_FAMILY_HINTS, type UnetHints } from './detect/unet-config';
import { VAE_FAMILY_SCALING } from './detect/vae-config';
import type { WeightSet } from '../weights/weight-set';

/** The conventions of one UNet family. */
export interface FamilyConventions {
  unet: UnetHints;
  vae: { scalingFactor: number; shiftFactor: number };
  /** Native [width, height] in pixels for each prediction type. */
  nativeSize: { epsilon: number; v_prediction: number };
  scheduler: Record<string, unknown>;
}

export const FAMILY_CONVENTIONS: Readonly<Record<'sd1' | 'sd2' | 'sdxl' | 'sdxl-refiner', FamilyConventions>> = {
  sd1: { unet: UNET_FAMILY_HINTS.sd1, vae: VAE_FAMILY_SCALING.sd1, nativeSize: { epsilon: 512, v_prediction: 512 }, scheduler: SD15_SCHEDULER_CONFIG },
  sd2: { unet: UNET_FAMILY_HINTS.sd2, vae: VAE_FAMILY_SCALING.sd2, nativeSize: { epsilon: 512, v_prediction: 768 }, scheduler: SD15_SCHEDULER_CONFIG },
  sdxl: { unet: UNET_FAMILY_HINTS.sdxl, vae: VAE_FAMILY_SCALING.sdxl, nativeSize: { epsilon: 1024, v_prediction: 1024 }, scheduler: SD15_SCHEDULER_CONFIG },
  'sdxl-refiner': { unet: UNET_FAMILY_HINTS.sdxl, vae: VAE_FAMILY_SCALING.sdxl, nativeSize: { epsilon: 1024, v_prediction: 1024 }, scheduler: SD15_SCHEDULER_CONFIG },
};

/** The CLIP builder's family for a text encoder of a model family. */
export function clipFamilyOf(family: ModelFamily, role: TextEncoderLocation['role']): ClipTextFamily {
  if (family === 'sd2') return 'sd2';
  if (family === 'sdxl' || family === 'sdxl-refiner') return role === 'clip_l' ? 'sdxl-clip-l' : 'sdxl-clip-g';
  return 'sd1';
}

/**
 * The pad token of a text encoder's tokenizer: OpenCLIP-trained encoders (SD 2.x ViT-H, SDXL bigG) pad with `!`
 * (id 0: open_clip's tokenizer pads with zeros, which diffusers' SD2 / SDXL `tokenizer_2` configs spell "!"),
 * OpenAI CLIP ViT-L pads with `<|endoftext|>`.
 */
export function padTokenOf(role: TextEncoderLocation['role']): string {
  return role === 'clip_l' ? '<|endoftext|>' : '!';
}

/**
 * SD 2.x v-prediction heuristic for a single file without a config (ComfyUI `supported_models.SD20.model_type`):
 * a 4-channel SD 2.x UNet whose last output transformer's first LayerNorm bias has a population standard
 * deviation above 0.09 is the 768-v model; inpainting UNets are epsilon.
 */
export async function sd2IsVPrediction(unet: WeightSet): Promise<boolean> {
  if (unet.shape('input_blocks.0.0.weight')[1] !== 4) return false;
  const last = unet.maxIndex('output_blocks.');
  for (let b = last; b >= 0; b--) {
    const key = `output_blocks.${b}.1.transformer_blocks.0.norm1.bias`;
    if (!unet.has(key)) continue;
    const v = await unet.read(key);
    let mean = 0;
    for (const x of v) mean += x;
    mean /= v.length;
    let variance = 0;
    for (const x of v) variance += (x - mean) ** 2;
    return Math.sqrt(variance / v.length) > 0.09;
  }
  return false;
}
