/**
 * UNet / transformer-only files (a city96 / ComfyUI-GGUF FLUX transformer, a stable-diffusion.cpp
 * `--diffusion-model` UNet, a UNet-only safetensors) with a sidecar `<name>.json` `{"base": "<model id>"}`: the
 * denoiser comes from the file, its text encoders, VAE, tokenizers and (unless the sidecar gives them) their
 * configs and — for UNet families — the scheduler from the base model, which must be of the same family. Both models' files are part
 * of the content (cache key, receipt hash), so replacing either rebuilds.
 */
import { FAMILY_NAMES } from './detect/family';
import { CheckpointError, type CheckpointParts } from './open-checkpoint';
import type { CheckpointRef } from './checkpoint-engine';

/**
 * Join a checkpoint with its sidecar's base: the base supplies the networks the file lacks (VAE, CLIP encoders,
 * T5 for flow families) with their configs and tokenizers; the file keeps its own. A `base` beside a file that
 * lacks nothing is refused (it would be ambiguous).
 * @param origin how errors name the base: "the sidecar's base" (default) or "DEFAULT_BASE_FLUX's base" when the
 *        deployment's default for the family was used (default-bases.ts).
 * @throws CheckpointError when the base is unknown, is the file itself, is itself denoiser-only, or is of another
 *         family; the base's own opening errors, prefixed with its id. Closes `parts` on failure.
 */
export async function withBaseModel(
  ref: Pick<CheckpointRef, 'id'>,
  parts: CheckpointParts,
  resolveBase: (id: string) => Promise<CheckpointRef | undefined>,
  openBase?: (ref: CheckpointRef) => Promise<CheckpointParts>,
  origin = "the sidecar's base",
): Promise<CheckpointParts> {
  const baseId = parts.configs.base!;
  try {
    const flow = parts.family === 'flux' || parts.family === 'sd3';
    const ownRoles = new Set(parts.textEncoders.map((t) => t.role));
    const lacks = lacking(parts);
    if (!lacks.vae && !lacks.text && !lacks.t5) throw new CheckpointError(`the sidecar names a base model ("${baseId}"), but the file holds its own VAE and text encoders; remove "base"`);
    if (baseId === ref.id) throw new CheckpointError(`${origin} "${baseId}" is the file itself`);
    const baseRef = await resolveBase(baseId);
    if (!baseRef) throw new CheckpointError(`${origin} "${baseId}" is not a checkpoint in MODELS_DIR/checkpoints`);
    const { openCheckpoint } = await import('./checkpoint-engine');
    let base: CheckpointParts;
    try {
      base = await (openBase ?? ((r) => openCheckpoint(r)))(baseRef);
    } catch (err) {
      throw new CheckpointError(`${origin} "${baseId}" cannot be opened: ${(err as Error).message}`);
    }
    if (base.unetOnly || !base.vae) {
      await base.close();
      throw new CheckpointError(`${origin} "${baseId}" has no VAE or text encoders of its own`);
    }
    if (base.family !== parts.family) {
      await base.close();
      throw new CheckpointError(`${origin} "${baseId}" is a ${FAMILY_NAMES[base.family]} model; this ${FAMILY_NAMES[parts.family]} file needs a base of its own family`);
    }
    const own = parts.configs;
    const from = base.configs;
    return {
      ...parts,
      // Only what the file lacks comes from the base (an SD 3.x single file may carry its VAE and some encoders).
      vae: lacks.vae ? base.vae : parts.vae,
      textEncoders: flow ? [...parts.textEncoders, ...base.textEncoders.filter((t) => !ownRoles.has(t.role))] : lacks.text ? base.textEncoders : parts.textEncoders,
      t5: lacks.t5 ? base.t5 : parts.t5,
      tokenizerDirs: { ...base.tokenizerDirs, ...parts.tokenizerDirs },
      configs: {
        ...from,
        ...(lacks.vae ? {} : { vae: undefined }),
        // The base's configs of encoders the file carries itself are not theirs (the sidecar may give them).
        ...(flow ? ownEncoderConfigs(parts) : {}),
        ...Object.fromEntries(Object.entries(own).filter(([, v]) => v !== undefined)),
        // The denoiser's own config never comes from the base (its tensors are another file's); nor, for flow
        // transformers, the scheduler: its shift belongs to the transformer (a FLUX.1-dev file on a schnell base
        // keeps dev's dynamic shifting), so it is the sidecar's or the detected variant's.
        unet: own.unet,
        transformer: own.transformer,
        ...(parts.family === 'flux' || parts.family === 'sd3' ? { scheduler: own.scheduler } : {}),
      },
      contentFiles: [...parts.contentFiles, ...base.contentFiles],
      unetOnly: false,
      close: async () => {
        await Promise.all([parts.close(), base.close()]);
      },
    };
  } catch (err) {
    await parts.close();
    throw err;
  }
}

/**
 * The diffusers component names of the encoders a flow-family file carries itself, set to undefined (so the base's
 * configs for them are dropped): FLUX.1 `text_encoder` (CLIP-L) / `text_encoder_2` (T5); SD 3.x `text_encoder`
 * (CLIP-L), `text_encoder_2` (CLIP-G), `text_encoder_3` (T5).
 */
function ownEncoderConfigs(parts: CheckpointParts): Partial<Record<'text_encoder' | 'text_encoder_2' | 'text_encoder_3', undefined>> {
  const out: Partial<Record<'text_encoder' | 'text_encoder_2' | 'text_encoder_3', undefined>> = {};
  for (const t of parts.textEncoders) out[t.role === 'clip_g' ? 'text_encoder_2' : 'text_encoder'] = undefined;
  if (parts.t5) out[parts.family === 'flux' ? 'text_encoder_2' : 'text_encoder_3'] = undefined;
  return out;
}

/**
 * Which networks a checkpoint lacks: a VAE, a text encoder (flow families: each CLIP role on its own, so an SD 3
 * file with CLIP-L and CLIP-G inside takes only T5 from the base), or (flow families) the T5 encoder.
 */
function lacking(parts: CheckpointParts): { vae: boolean; text: boolean; t5: boolean } {
  const flow = parts.family === 'flux' || parts.family === 'sd3';
  const ownRoles = new Set(parts.textEncoders.map((t) => t.role));
  const neededRoles: string[] = parts.family === 'sd3' ? ['clip_l', 'clip_g'] : parts.family === 'flux' ? ['clip_l'] : [];
  return { vae: !parts.vae, text: flow ? neededRoles.some((r) => !ownRoles.has(r as 'clip_l')) : parts.textEncoders.length === 0, t5: flow && !parts.t5 };
}

/** Whether a checkpoint lacks a network a base model would supply (its VAE, text encoders or T5). */
export function lacksParts(parts: CheckpointParts): boolean {
  const l = lacking(parts);
  return l.vae || l.text || l.t5;
}
