/**
 * Everything the engine needs to build and run an opened checkpoint, decided once from its tensors, its
 * configs (sidecar or diffusers folder) and its family's conventions, in that order of precedence:
 * each network's detected architecture, the noise schedule and prediction type, the VAE's latent scaling,
 * the tokenizer's pad token, the native size and what the model can do. Cheap: only tensor headers are read
 * (plus one small tensor for SD 2.x's v-prediction heuristic).
 */
import { clipTextHintsFromTransformersConfig, detectClipTextConfig, type ClipTextConfig, type ClipTextHints } from './detect/clip-text-config';
import { FAMILY_NAMES, type ModelFamily, type TextEncoderLocation } from './detect/family';
import { baseFixHint } from './default-bases';
import { detectUnetConfig, unetHintsFromDiffusersConfig, unetHintsFromLdmParams, type UnetConfig, type UnetHints } from './detect/unet-config';
import { detectVaeConfig, type VaeConfig } from './detect/vae-config';
import { clipFamilyOf, FAMILY_CONVENTIONS, padTokenOf, sd2IsVPrediction } from './conventions';
import { CheckpointError, type CheckpointParts } from './open-checkpoint';
import type { WeightSet } from '../weights/weight-set';

/** One text encoder, ready to build. */
export interface TextEncoderSpec {
  role: TextEncoderLocation['role'];
  config: ClipTextConfig;
  weights: WeightSet;
  /** Pad token of its tokenizer. */
  padToken: string;
}

/** A checkpoint's engine-level description. */
export interface ModelSpec {
  family: ModelFamily;
  /** e.g. "Stable Diffusion 1.x". */
  architecture: string;
  unet: { config: UnetConfig; weights: WeightSet };
  vae?: { config: VaeConfig; weights: WeightSet };
  textEncoders: TextEncoderSpec[];
  /** diffusers scheduler config (the noise table and prediction type). */
  scheduler: Record<string, unknown>;
  predictionType: 'epsilon' | 'v_prediction';
  /** [width, height] in pixels. */
  nativeSize: [number, number];
  capabilities: Array<'txt2img' | 'img2img' | 'inpaint'>;
  /** Element type most of the UNet's tensors are stored in (`F16`, `F32`, `BF16`, …). */
  storedDtype: string;
  /** Number of weights of the networks the engine builds (for memory estimates). */
  parameterCount: number;
  /** SDXL base / refiner conditioning facts (absent for SD 1.x / 2.x). */
  sdxl?: SdxlSpec;
}

/**
 * How an SDXL base or refiner UNet is conditioned (diffusers `StableDiffusionXLPipeline` /
 * `StableDiffusionXLImg2ImgPipeline`): every value derived from the tensors, except the empty-prompt rule.
 */
export interface SdxlSpec {
  /** `base`: CLIP-L + OpenCLIP bigG, 6 time ids; `refiner`: bigG only, 5 time ids (aesthetic score). */
  kind: 'base' | 'refiner';
  /** Width of `text_embeds`: the bigG encoder's projection width (label_emb input = pooled + ids × d). */
  pooledDim: number;
  /** Number of time ids: 6 (base: orig h, w, crop top, left, target h, w) or 5 (refiner: …, aesthetic score). */
  timeIdCount: 5 | 6;
  /**
   * diffusers `force_zeros_for_empty_prompt`: an empty negative prompt gives all-zero negative embeddings and
   * pooled vector instead of encoding "" (model_index.json's value; default true for the base, false for the refiner).
   */
  forceZerosForEmptyPrompt: boolean;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * UNet hints: the family's conventions, overridden by the config's own fields — diffusers' head counts
 * (`num_attention_heads` / `attention_head_dim`), groups and eps, or an A1111 yaml's head width
 * (`num_head_channels`, carried over by sidecar.ts).
 */
function unetHints(family: 'sd1' | 'sd2' | 'sdxl' | 'sdxl-refiner', config: Record<string, unknown> | undefined): UnetHints {
  const base: UnetHints = FAMILY_CONVENTIONS[family].unet;
  if (!config) return base;
  const fromConfig = unetHintsFromDiffusersConfig(config);
  const headsGiven = config.num_attention_heads !== undefined || config.attention_head_dim !== undefined;
  const attentionHeads = typeof config.num_head_channels === 'number' ? unetHintsFromLdmParams({ num_head_channels: config.num_head_channels }).attentionHeads : headsGiven ? fromConfig.attentionHeads : base.attentionHeads;
  return { ...base, ...fromConfig, attentionHeads };
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

function parameters(w: WeightSet): number {
  let n = 0;
  for (const name of w.names()) n += w.shape(name).reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Describe an opened checkpoint.
 * @throws CheckpointError for a family the UNet engine does not build or a model without a VAE or text
 *         encoder; the detection errors (MissingWeightError, WeightShapeError, UnetHintError, ClipTextConfigError,
 *         VaeConfigError) when tensors and hints do not form the architecture.
 */
export async function describeModel(parts: CheckpointParts): Promise<ModelSpec> {
  const family = parts.family;
  if (family === 'flux' || family === 'sd3') {
    throw new CheckpointError(`${FAMILY_NAMES[family]} checkpoints are flow-matching transformers, described by describeFlowModel (flow-spec.ts), not by the UNet path`);
  }
  if (parts.unetOnly) throw new CheckpointError(`the file holds only a UNet: name the model that supplies its text encoder and VAE in ${baseFixHint(family)}`);
  if (!parts.vae) throw new CheckpointError('the checkpoint has no VAE (first_stage_model.*)');
  if (parts.textEncoders.length === 0) throw new CheckpointError('the checkpoint has no text encoder');
  const conventions = FAMILY_CONVENTIONS[family];
  const configs = parts.configs;

  const unet = { config: detectUnetConfig(parts.unet, unetHints(family, configs.unet)), weights: parts.unet };
  const vaeConfig = configs.vae ?? {};
  const vae = {
    config: detectVaeConfig(parts.vae, {
      normGroups: num(vaeConfig.norm_num_groups),
      scalingFactor: num(vaeConfig.scaling_factor) ?? conventions.vae.scalingFactor,
      shiftFactor: num(vaeConfig.shift_factor) ?? conventions.vae.shiftFactor,
    }),
    weights: parts.vae,
  };

  const textEncoders = parts.textEncoders.map((t, i): TextEncoderSpec => {
    // The OpenCLIP bigG encoder is diffusers' text_encoder_2 in the base and the refiner alike.
    const second = i === 1 || (family === 'sdxl-refiner' && t.role === 'clip_g');
    const raw = t.config ?? (second ? configs.text_encoder_2 : configs.text_encoder);
    const fromConfig: ClipTextHints = raw ? clipTextHintsFromTransformersConfig(raw) : {};
    // The conditioning is the last layer the graph runs, with the final LayerNorm (SD 1.x; SD 2.x's graph stops
    // one layer early, as LDM's `layer="penultimate"` and diffusers' 23-layer SD 2.x text encoder do). An A1111
    // yaml saying `layer: last` runs the whole OpenCLIP stack; `penultimate` for a transformers-layout encoder
    // drops its last layer.
    const clipLayer = raw?.clip_layer;
    const layers = t.weights.maxIndex(t.layout === 'open_clip' ? 'transformer.resblocks.' : 'text_model.encoder.layers.') + 1;
    if (clipLayer === 'last' && fromConfig.numHiddenLayers === undefined) fromConfig.numHiddenLayers = layers;
    if (clipLayer === 'penultimate' && fromConfig.numHiddenLayers === undefined) fromConfig.numHiddenLayers = layers - 1;
    const config = detectClipTextConfig(t.weights, { family: clipFamilyOf(family, t.role), ...fromConfig });
    return { role: t.role, config, weights: t.weights, padToken: padTokenOf(t.role) };
  });

  const scheduler = { ...conventions.scheduler, ...(configs.scheduler ?? {}) };
  let predictionType: ModelSpec['predictionType'] = scheduler.prediction_type === 'v_prediction' ? 'v_prediction' : 'epsilon';
  if (!configs.scheduler?.prediction_type && family === 'sd2' && (await sd2IsVPrediction(parts.unet))) predictionType = 'v_prediction';
  scheduler.prediction_type = predictionType;

  const sample = num(configs.unet?.sample_size);
  const side = sample ? sample * 8 : conventions.nativeSize[predictionType];
  const inpaint = unet.config.inChannels === unet.config.outChannels + 5;
  if (unet.config.inChannels !== unet.config.outChannels && !inpaint) {
    throw new CheckpointError(`a UNet with ${unet.config.inChannels} input channels for ${unet.config.outChannels} latent channels is neither a txt2img nor an inpainting model`);
  }
  const sdxl = family === 'sdxl' || family === 'sdxl-refiner' ? sdxlSpecOf(family, unet.config, textEncoders, parts.configs) : undefined;
  const canEncode = !!vae.config.encoder;
  const capabilities: ModelSpec['capabilities'] = inpaint ? (canEncode ? ['inpaint'] : []) : canEncode ? ['txt2img', 'img2img', 'inpaint'] : ['txt2img'];
  return {
    family,
    architecture: FAMILY_NAMES[family],
    unet,
    vae,
    textEncoders,
    scheduler,
    predictionType,
    nativeSize: [side, side],
    capabilities,
    storedDtype: majorityDtype(parts.unet),
    parameterCount: parameters(parts.unet) + parameters(parts.vae) + textEncoders.reduce((n, t) => n + parameters(t.weights), 0),
    ...(sdxl ? { sdxl } : {}),
  };
}

/**
 * The SDXL conditioning facts, checked against the tensors: the encoders the kind needs (base: clip_l then
 * clip_g; refiner: clip_g), a bigG encoder with a text projection, a UNet with label_emb whose input width is
 * pooled + ids × timeIdEmbedDim with 6 ids (base) or 5 (refiner), and a cross-attention width equal to the
 * concatenated encoder widths.
 * @throws CheckpointError naming the tensor or config that does not fit.
 */
function sdxlSpecOf(family: 'sdxl' | 'sdxl-refiner', unet: UnetConfig, encoders: TextEncoderSpec[], configs: CheckpointParts['configs']): SdxlSpec {
  const kind = family === 'sdxl' ? 'base' : 'refiner';
  const roles = encoders.map((e) => e.role).join(',');
  const expected = kind === 'base' ? 'clip_l,clip_g' : 'clip_g';
  if (roles !== expected) throw new CheckpointError(`an SDXL ${kind} needs the text encoders ${expected}, the checkpoint has ${roles || 'none'}`);
  const bigG = encoders[encoders.length - 1];
  if (bigG.config.projectionDim === null) throw new CheckpointError('the SDXL OpenCLIP bigG text encoder has no text_projection (its pooled output is the UNet\'s text_embeds)');
  if (!unet.adm) throw new CheckpointError('an SDXL UNet needs label_emb.0 (diffusers add_embedding): the file has none');
  const pooledDim = bigG.config.projectionDim;
  const idWidth = unet.adm.inChannels - pooledDim;
  const timeIdCount = idWidth / unet.adm.timeIdEmbedDim;
  const expectedIds = kind === 'base' ? 6 : 5;
  if (timeIdCount !== expectedIds) {
    throw new CheckpointError(
      `label_emb.0.0 takes ${unet.adm.inChannels} inputs: ${pooledDim} pooled + ${idWidth}, which is not ${expectedIds} time ids × ${unet.adm.timeIdEmbedDim} (addition_time_embed_dim) as an SDXL ${kind} needs`,
    );
  }
  const context = encoders.reduce((n, e) => n + e.config.hiddenSize, 0);
  if (unet.contextDim !== context) throw new CheckpointError(`the UNet's cross-attention width ${unet.contextDim} is not the text encoders' ${encoders.map((e) => e.config.hiddenSize).join(' + ')} = ${context}`);
  const index = configs.model_index;
  const force = typeof index?.force_zeros_for_empty_prompt === 'boolean' ? index.force_zeros_for_empty_prompt : kind === 'base';
  return { kind, pooledDim, timeIdCount: expectedIds, forceZerosForEmptyPrompt: force };
}
