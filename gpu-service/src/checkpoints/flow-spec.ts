/**
 * The engine-level description of a flow-matching transformer checkpoint (FLUX.1, Stable Diffusion 3.x), the
 * counterpart of model-spec.ts for the UNet families: each network's detected architecture, the flow scheduler
 * config (shift, dynamic shifting), the VAE's latent scaling, the T5 sequence length, native size and capabilities.
 * Precedence as for UNet checkpoints: the model's own configs (diffusers folder, sidecar), then the family's
 * conventions below (diffusers' published pipeline configs and pipeline defaults):
 *
 * | family | transformer | text encoders | T5 length | scheduler | VAE | native size |
 * |---|---|---|---|---|---|---|
 * | FLUX.1-schnell | FluxTransformer2DModel, no guidance_in | CLIP-L pooled + T5 | 256 | shift 1, static | 0.3611 / 0.1159 | VAE sample_size, else 1024² |
 * | FLUX.1-dev | the same with guidance_in | CLIP-L pooled + T5 | 512 | dynamic (μ by image tokens, 0.5 → 1.15 over 256 → 4096) | same | 1024² |
 * | SD 3.x | MMDiT | CLIP-L + CLIP-G (penultimate, text_embeds) + T5 | 256 | shift 3, static | 1.5305 / 0.0609 | 8 × transformer sample_size, else 1024² |
 *
 * Sources: diffusers FluxPipeline / StableDiffusion3Pipeline (`max_sequence_length`, `encode_prompt`), the
 * black-forest-labs/FLUX.1-schnell and -dev and stabilityai/stable-diffusion-3.5-* `scheduler_config.json`.
 */
import { clipTextHintsFromTransformersConfig, detectClipTextConfig } from './detect/clip-text-config';
import { FAMILY_NAMES } from './detect/family';
import { baseFixHint } from './default-bases';
import { detectFluxConfig, fluxHintsFromDiffusersConfig, type FluxConfig } from './detect/flux-config';
import { detectMmditConfig, mmditHintsFromDiffusersConfig, type MmditConfig } from './detect/mmdit-config';
import { detectT5EncoderConfig, t5HintsFromTransformersConfig, type T5EncoderConfig } from './detect/t5-config';
import { detectVaeConfig, VAE_FAMILY_SCALING, type VaeConfig } from './detect/vae-config';
import type { TextEncoderSpec } from './model-spec';
import { CheckpointError, type CheckpointParts } from './open-checkpoint';
import type { WeightSet } from '../weights/weight-set';

/** diffusers FlowMatchEulerDiscreteScheduler fields the engine reads (diffusion/schedules/flow-schedule.ts). */
export interface FlowSchedulerConfig {
  _class_name: 'FlowMatchEulerDiscreteScheduler';
  num_train_timesteps: number;
  shift: number;
  use_dynamic_shifting: boolean;
  base_shift: number;
  max_shift: number;
  base_image_seq_len: number;
  max_image_seq_len: number;
}

/** A flow checkpoint's engine-level description. */
export interface FlowModelSpec {
  family: 'flux' | 'sd3';
  /** e.g. "FLUX.1-schnell", "Stable Diffusion 3.5 Medium". */
  architecture: string;
  transformer: { kind: 'flux'; config: FluxConfig; weights: WeightSet } | { kind: 'mmdit'; config: MmditConfig; weights: WeightSet };
  vae: { config: VaeConfig; weights: WeightSet };
  /** CLIP-L (FLUX.1: pooled output only), then CLIP-G (SD 3.x). */
  textEncoders: TextEncoderSpec[];
  t5: { config: T5EncoderConfig; weights: WeightSet; maxSequenceLength: number };
  scheduler: FlowSchedulerConfig;
  predictionType: 'flow';
  /** [width, height] in pixels. */
  nativeSize: [number, number];
  capabilities: Array<'txt2img' | 'img2img' | 'inpaint'>;
  /** Whether the transformer takes a distilled guidance scale (FLUX.1-dev style `guidance_in`). */
  guidanceEmbed: boolean;
  storedDtype: string;
  parameterCount: number;
}

/** diffusers' published scheduler configs per family / variant. */
export const FLOW_SCHEDULER_DEFAULTS = {
  'flux-schnell': { shift: 1, use_dynamic_shifting: false },
  'flux-dev': { shift: 3, use_dynamic_shifting: true },
  sd3: { shift: 3, use_dynamic_shifting: false },
} as const;

/** T5 tokens the pipelines encode by default (diffusers `max_sequence_length`: FLUX.1-schnell 256, -dev 512, SD 3 256). */
export const T5_SEQUENCE_DEFAULTS = { 'flux-schnell': 256, 'flux-dev': 512, sd3: 256 } as const;

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function parameters(w: WeightSet): number {
  let n = 0;
  for (const name of w.names()) n += w.shape(name).reduce((a, b) => a * b, 1);
  return n;
}

function majorityDtype(w: WeightSet): string {
  const counts = new Map<string, number>();
  for (const n of w.names()) {
    const r = w.ref(n);
    const first = r.sources?.[0] ?? r;
    const dtype = first.file.entries.get(first.key)?.dtype ?? 'F32';
    counts.set(dtype, (counts.get(dtype) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'F32';
}

/**
 * The scheduler config: the model's own (diffusers folder or sidecar `scheduler`) over the variant's published one.
 * @throws CheckpointError for a scheduler of another kind or a non-positive shift.
 */
export function flowSchedulerConfig(variant: keyof typeof FLOW_SCHEDULER_DEFAULTS, given: Record<string, unknown> | undefined): FlowSchedulerConfig {
  if (given?._class_name !== undefined && given._class_name !== 'FlowMatchEulerDiscreteScheduler') {
    throw new CheckpointError(`scheduler ${String(given._class_name)} is not a flow-matching scheduler (FlowMatchEulerDiscreteScheduler)`);
  }
  const d = FLOW_SCHEDULER_DEFAULTS[variant];
  const c: FlowSchedulerConfig = {
    _class_name: 'FlowMatchEulerDiscreteScheduler',
    num_train_timesteps: num(given?.num_train_timesteps) ?? 1000,
    shift: num(given?.shift) ?? d.shift,
    use_dynamic_shifting: typeof given?.use_dynamic_shifting === 'boolean' ? given.use_dynamic_shifting : d.use_dynamic_shifting,
    base_shift: num(given?.base_shift) ?? 0.5,
    max_shift: num(given?.max_shift) ?? 1.15,
    base_image_seq_len: num(given?.base_image_seq_len) ?? 256,
    max_image_seq_len: num(given?.max_image_seq_len) ?? 4096,
  };
  if (!(c.shift > 0)) throw new CheckpointError(`scheduler shift must be > 0, got ${c.shift}`);
  if (!Number.isInteger(c.num_train_timesteps) || c.num_train_timesteps < 2) throw new CheckpointError(`scheduler num_train_timesteps must be an integer ≥ 2, got ${c.num_train_timesteps}`);
  if (c.use_dynamic_shifting && !(c.max_image_seq_len > c.base_image_seq_len)) throw new CheckpointError('scheduler max_image_seq_len must exceed base_image_seq_len');
  return c;
}

const SD3_VARIANT_NAMES = { 'sd3-medium': 'Stable Diffusion 3 Medium', 'sd3.5-large': 'Stable Diffusion 3.5 Large', 'sd3.5-medium': 'Stable Diffusion 3.5 Medium' } as const;

/**
 * Describe an opened flow checkpoint (its text encoders and VAE already joined from a `base`, base-model.ts).
 * @throws CheckpointError for a missing VAE, CLIP or T5 encoder (naming the sidecar fix), or a wrong encoder count;
 *         the detection errors (FluxHintError, MmditHintError, T5ConfigError, ClipTextConfigError, VaeConfigError,
 *         MissingWeightError, WeightShapeError) when tensors and configs do not form the architecture.
 */
export async function describeFlowModel(parts: CheckpointParts): Promise<FlowModelSpec> {
  const family = parts.family;
  if (family !== 'flux' && family !== 'sd3') throw new CheckpointError(`${FAMILY_NAMES[family]} is not a flow-matching family`);
  const missing = (what: string) =>
    new CheckpointError(`the checkpoint has no ${what}: a ${FAMILY_NAMES[family]} transformer file needs ${baseFixHint(family)} naming a model (e.g. the diffusers folder) that supplies its text encoders and VAE`);
  if (parts.unetOnly || !parts.vae) throw missing('VAE');
  if (!parts.t5) throw missing('T5 text encoder');
  const configs = parts.configs;

  let transformer: FlowModelSpec['transformer'];
  let variant: keyof typeof FLOW_SCHEDULER_DEFAULTS;
  let architecture: string;
  if (family === 'flux') {
    const config = detectFluxConfig(parts.unet, configs.transformer ? fluxHintsFromDiffusersConfig(configs.transformer) : {});
    transformer = { kind: 'flux', config, weights: parts.unet };
    variant = config.guidanceEmbed ? 'flux-dev' : 'flux-schnell';
    architecture = config.guidanceEmbed ? 'FLUX.1-dev' : 'FLUX.1-schnell';
  } else {
    const config = detectMmditConfig(parts.unet, configs.transformer ? mmditHintsFromDiffusersConfig(configs.transformer) : {});
    transformer = { kind: 'mmdit', config, weights: parts.unet };
    variant = 'sd3';
    architecture = config.variant ? SD3_VARIANT_NAMES[config.variant] : FAMILY_NAMES.sd3;
  }

  const clipRoles = family === 'flux' ? (['clip_l'] as const) : (['clip_l', 'clip_g'] as const);
  const textEncoders = clipRoles.map((role): TextEncoderSpec => {
    const t = parts.textEncoders.find((e) => e.role === role);
    if (!t) throw missing(role === 'clip_l' ? 'CLIP-L text encoder' : 'CLIP-G text encoder');
    const raw = t.config ?? (role === 'clip_l' ? configs.text_encoder : configs.text_encoder_2);
    // FLUX.1 reads CLIP-L's pooled output after every layer; SD 3.x reads hidden_states[-2] (the graph outputs
    // every layer's states, so it runs them all) and the projected text_embeds, as SDXL does.
    const config = detectClipTextConfig(t.weights, { family: family === 'flux' ? 'sd1' : role === 'clip_l' ? 'sdxl-clip-l' : 'sdxl-clip-g', ...(raw ? clipTextHintsFromTransformersConfig(raw) : {}), numHiddenLayers: t.weights.maxIndex('text_model.encoder.layers.') + 1 });
    if (family === 'sd3' && config.projectionDim === null) throw new CheckpointError(`the SD 3.x ${role} text encoder has no text_projection (CLIPTextModelWithProjection)`);
    return { role, config, weights: t.weights, padToken: role === 'clip_l' ? '<|endoftext|>' : '!' };
  });
  const t5Raw = parts.t5.config ?? (family === 'flux' ? configs.text_encoder_2 : configs.text_encoder_3);
  const t5Config = detectT5EncoderConfig(parts.t5.weights, t5Raw ? t5HintsFromTransformersConfig(t5Raw) : {});
  const t5Length = num((family === 'flux' ? configs.text_encoder_2 : configs.text_encoder_3)?.max_sequence_length) ?? T5_SEQUENCE_DEFAULTS[variant];

  const vaeConfig = configs.vae ?? {};
  const scaling = VAE_FAMILY_SCALING[family];
  const vae = {
    config: detectVaeConfig(parts.vae, {
      normGroups: num(vaeConfig.norm_num_groups),
      scalingFactor: num(vaeConfig.scaling_factor) ?? scaling.scalingFactor,
      shiftFactor: num(vaeConfig.shift_factor) ?? scaling.shiftFactor,
    }),
    weights: parts.vae,
  };
  const latentChannels = transformer.kind === 'flux' ? transformer.config.inChannels / 4 : transformer.config.inChannels;
  if (vae.config.latentChannels !== latentChannels) {
    throw new CheckpointError(`the VAE has ${vae.config.latentChannels} latent channels, the transformer works on ${latentChannels}`);
  }
  const scheduler = flowSchedulerConfig(variant, configs.scheduler);
  // SD 3.x: the transformer's sample_size is in latents; FLUX.1's transformer has none, its VAE's is in pixels.
  const sample = num(configs.transformer?.sample_size);
  const side = transformer.kind === 'mmdit' ? (sample ? sample * 8 : 1024) : (num(configs.vae?.sample_size) ?? 1024);
  const canEncode = !!vae.config.encoder;
  return {
    family,
    architecture,
    transformer,
    vae,
    textEncoders,
    t5: { config: t5Config, weights: parts.t5.weights, maxSequenceLength: t5Length },
    scheduler,
    predictionType: 'flow',
    nativeSize: [side, side],
    capabilities: canEncode ? ['txt2img', 'img2img', 'inpaint'] : ['txt2img'],
    guidanceEmbed: transformer.kind === 'flux' && transformer.config.guidanceEmbed,
    storedDtype: majorityDtype(parts.unet),
    parameterCount: parameters(parts.unet) + parameters(parts.vae) + parameters(parts.t5.weights) + textEncoders.reduce((n, t) => n + parameters(t.weights), 0),
  };
}
