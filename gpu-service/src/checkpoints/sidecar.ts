/**
 * What a checkpoint's tensors cannot tell (attention heads, GroupNorm groups, prediction type, VAE scaling
 * factor, …) may come from a sidecar file beside it, in this order:
 * 1. `<name>.json`: diffusers component configs `{unet, vae, text_encoder, text_encoder_2, scheduler}` — the same
 *    objects as a diffusers folder's component `config.json` files and `scheduler/scheduler_config.json` — plus `base`, the id of
 *    a model that supplies missing components (UNet-only files).
 * 2. `<name>.yaml`: AUTOMATIC1111's LDM config (`v1-inference.yaml`, `v2-inference-v.yaml`, …), of which the keys
 *    below are read and translated to the diffusers names.
 * Whatever neither gives comes from the family's conventions (conventions.ts).
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';

/** diffusers-style component configs (only the objects present are set). */
export interface ComponentConfigs {
  unet?: Record<string, unknown>;
  vae?: Record<string, unknown>;
  text_encoder?: Record<string, unknown>;
  text_encoder_2?: Record<string, unknown>;
  /** Flow pipelines: the T5 encoder of SD 3.x (FLUX.1 keeps T5 as text_encoder_2). */
  text_encoder_3?: Record<string, unknown>;
  /** Flow pipelines: the FLUX.1 / SD 3.x transformer's diffusers config. */
  transformer?: Record<string, unknown>;
  scheduler?: Record<string, unknown>;
  /** A diffusers folder's `model_index.json` (pipeline-level flags such as `force_zeros_for_empty_prompt`). */
  model_index?: Record<string, unknown>;
  /** Id of the model whose text encoders and VAE a UNet-only file uses. */
  base?: string;
}

/** A sidecar read from disk: the configs, the file they came from and its bytes (part of the cache key). */
export interface Sidecar {
  configs: ComponentConfigs;
  path: string;
  bytes: Buffer;
}

/** A sidecar that exists but cannot be used; the model is listed as broken with this reason. */
export class SidecarError extends Error {
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'SidecarError';
  }
}

function withoutExtension(path: string): string {
  return path.replace(/\.(safetensors|gguf|sft)$/i, '');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const COMPONENTS = ['unet', 'transformer', 'vae', 'text_encoder', 'text_encoder_2', 'text_encoder_3', 'scheduler'] as const;

/** Validate a JSON sidecar's shape. @throws SidecarError */
function fromJson(path: string, bytes: Buffer): ComponentConfigs {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new SidecarError(path, `not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(parsed)) throw new SidecarError(path, 'must be a JSON object {unet, vae, text_encoder, scheduler, base}');
  const configs: ComponentConfigs = {};
  for (const c of COMPONENTS) {
    const v = parsed[c];
    if (v === undefined) continue;
    if (!isObject(v)) throw new SidecarError(path, `"${c}" must be an object (a diffusers config)`);
    configs[c] = v;
  }
  if (parsed.base !== undefined) {
    if (typeof parsed.base !== 'string' || !parsed.base) throw new SidecarError(path, '"base" must be a model id');
    configs.base = parsed.base;
  }
  return configs;
}

/**
 * AUTOMATIC1111 / LDM yaml → diffusers names:
 * - `model.params.parameterization: v` → scheduler `prediction_type: v_prediction`;
 * - `model.params.linear_start / linear_end / timesteps` → scheduler `beta_start / beta_end / num_train_timesteps`
 *   with `beta_schedule: scaled_linear` (LDM's "linear" schedule is linspace of √β, diffusers' scaled_linear);
 * - `model.params.scale_factor` → vae `scaling_factor`;
 * - `model.params.unet_config.params.num_heads` (> 0) → unet `attention_head_dim` (diffusers: heads per level),
 *   `num_head_channels` (> 0) → unet `num_head_channels`, `use_linear_in_transformer` → `use_linear_projection`;
 * - `model.params.cond_stage_config.params.layer` → text_encoder `clip_layer` ('last' | 'penultimate').
 * @throws SidecarError for unparsable YAML or a document without `model.params`.
 */
function fromYaml(path: string, bytes: Buffer): ComponentConfigs {
  let doc: unknown;
  try {
    doc = parseYaml(bytes.toString('utf8'));
  } catch (err) {
    throw new SidecarError(path, `not valid YAML (${(err as Error).message})`);
  }
  const params = isObject(doc) && isObject(doc.model) && isObject(doc.model.params) ? doc.model.params : undefined;
  if (!params) throw new SidecarError(path, 'has no model.params (not an LDM config)');
  const scheduler: Record<string, unknown> = {};
  if (params.parameterization === 'v') scheduler.prediction_type = 'v_prediction';
  else if (params.parameterization === 'eps') scheduler.prediction_type = 'epsilon';
  if (typeof params.linear_start === 'number') scheduler.beta_start = params.linear_start;
  if (typeof params.linear_end === 'number') scheduler.beta_end = params.linear_end;
  if (typeof params.timesteps === 'number') scheduler.num_train_timesteps = params.timesteps;
  if (scheduler.beta_start !== undefined || scheduler.beta_end !== undefined) scheduler.beta_schedule = 'scaled_linear';
  const vae: Record<string, unknown> = {};
  if (typeof params.scale_factor === 'number') vae.scaling_factor = params.scale_factor;
  const unet: Record<string, unknown> = {};
  const u = isObject(params.unet_config) && isObject(params.unet_config.params) ? params.unet_config.params : {};
  if (typeof u.num_heads === 'number' && u.num_heads > 0) unet.attention_head_dim = u.num_heads;
  if (typeof u.num_head_channels === 'number' && u.num_head_channels > 0) unet.num_head_channels = u.num_head_channels;
  if (typeof u.use_linear_in_transformer === 'boolean') unet.use_linear_projection = u.use_linear_in_transformer;
  const text: Record<string, unknown> = {};
  const cond = isObject(params.cond_stage_config) && isObject(params.cond_stage_config.params) ? params.cond_stage_config.params : {};
  if (cond.layer === 'penultimate' || cond.layer === 'last') text.clip_layer = cond.layer;
  const configs: ComponentConfigs = {};
  if (Object.keys(unet).length) configs.unet = unet;
  if (Object.keys(vae).length) configs.vae = vae;
  if (Object.keys(text).length) configs.text_encoder = text;
  if (Object.keys(scheduler).length) configs.scheduler = scheduler;
  return configs;
}

/**
 * The sidecar of a single-file checkpoint, or undefined when it has none.
 * @param checkpointPath path of the `.safetensors` / `.gguf` file.
 * @throws SidecarError for a sidecar that exists but cannot be read as its format.
 */
export async function readSidecar(checkpointPath: string): Promise<Sidecar | undefined> {
  const stem = withoutExtension(checkpointPath);
  const json = await readOptional(`${stem}.json`);
  if (json) return { configs: fromJson(`${stem}.json`, json), path: `${stem}.json`, bytes: json };
  for (const ext of ['.yaml', '.yml']) {
    const yaml = await readOptional(stem + ext);
    if (yaml) return { configs: fromYaml(stem + ext, yaml), path: stem + ext, bytes: yaml };
  }
  return undefined;
}

/** The sidecar paths a checkpoint may have (for listings: a sidecar is not a model of its own). */
export function sidecarPaths(checkpointPath: string): string[] {
  const stem = withoutExtension(checkpointPath);
  return [`${stem}.json`, `${stem}.yaml`, `${stem}.yml`];
}
