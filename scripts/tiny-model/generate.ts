/**
 * Generator of the analytic tiny model: a diffusers/Optimum ONNX model folder whose UNet is the
 * closed-form denoiser of Gaussian latents with a prompt-dependent mean (docs/architecture.md, "The
 * embedded default"; maths in closed-form.ts; file-by-file description in README.md here).
 * Deterministic (same options → same bytes), no downloads, well under a second per variant.
 *
 * Script use: `tsx scripts/tiny-model/generate.ts [--out MODELS_DIR] [--variant NAME]...`
 * writes MODELS_DIR/<NAME> for each variant (default: $MODELS_DIR or ./models, and the
 * `tiny-analytic` variant; `--variant all` writes every variant of TINY_VARIANTS). `--postprocess` also writes
 * the post-processing test stand-ins (postprocess-models.ts) into MODELS_DIR/matting and upscale_models.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  TINY_BETA_END,
  TINY_BETA_START,
  TINY_DATA_STD,
  TINY_MEAN_STD,
  TINY_HIDDEN_SIZE,
  TINY_KEEP_STD,
  TINY_NATIVE_SIZE,
  TINY_NUM_LAYERS,
  TINY_NUM_TRAIN_TIMESTEPS,
  TINY_SCALING_FACTOR,
  TINY_SEQUENCE_LENGTH,
} from './constants';
import { tinyEmbeddingTables } from './embedding-table';
import type { EncodedModel, OnnxGraphBuilder } from './onnx-graph-builder';
import { resolveTinyModelOptions, type ResolvedTinyModelOptions, type TinyModelOptions } from './options';
import { buildTextEncoderGraph } from './text-encoder-graph';
import { BOS_TOKEN, EOS_TOKEN, buildTinyTokenizer, tinyTokenizerFiles } from './tokenizer-files';
import { buildUnetGraph } from './unet-graph';
import { buildVaeDecoderGraph, buildVaeEncoderGraph } from './vae-graphs';
import { TINY_DEFAULT_VARIANT, TINY_VARIANTS } from './variants';
import { generatePostprocessStandIns } from './postprocess-models';

export { TINY_DEFAULT_VARIANT, TINY_VARIANTS } from './variants';
export { TINY_DEFAULT_OPTIONS, resolveTinyModelOptions } from './options';
export type { ResolvedTinyModelOptions, TinyModelOptions } from './options';

/** What `generateTinyModel` wrote. */
export interface TinyModelInfo {
  /** The model folder (absolute). */
  dir: string;
  options: ResolvedTinyModelOptions;
  /** Files written, relative to `dir`, '/'-separated, sorted. */
  files: string[];
}

/** Name of the external-data file beside a model.onnx (ONNX external data `location`). */
export const TINY_EXTERNAL_DATA_FILE = 'model.onnx_data';

/** diffusers' version string written in the JSON configs (format reference only). */
const DIFFUSERS_VERSION = '0.30.0';

/**
 * Every file of the model folder in memory: relative path ('/'-separated) → bytes. Pure and
 * deterministic: the same options always give the same bytes.
 * @throws Error when an option value is invalid (resolveTinyModelOptions).
 */
export function buildTinyModelFiles(options: TinyModelOptions = {}): Map<string, Uint8Array> {
  const opts = resolveTinyModelOptions(options);
  const files = new Map<string, Uint8Array>();
  const text = (name: string, content: string) => files.set(name, new TextEncoder().encode(content));
  const json = (name: string, value: unknown) => text(name, JSON.stringify(value, null, 2) + '\n');
  const onnxFile = (folder: string, graph: OnnxGraphBuilder, external: boolean, docString: string) => {
    const encoded: EncodedModel = graph.encode({
      docString,
      externalData: external ? { location: TINY_EXTERNAL_DATA_FILE, minBytes: 256 } : undefined,
      metadata: { generator: 'scripts/tiny-model', tiny_analytic: JSON.stringify(opts) },
    });
    files.set(`${folder}/model.onnx`, encoded.model);
    if (encoded.externalData) files.set(`${folder}/${TINY_EXTERNAL_DATA_FILE}`, encoded.externalData);
  };
  const torchDtype = opts.float16 ? 'float16' : 'float32';
  const [nativeWidth, nativeHeight] = TINY_NATIVE_SIZE;

  json('model_index.json', {
    _class_name: opts.inpainting ? 'OnnxStableDiffusionInpaintPipeline' : 'OnnxStableDiffusionPipeline',
    _diffusers_version: DIFFUSERS_VERSION,
    feature_extractor: [null, null],
    requires_safety_checker: false,
    safety_checker: [null, null],
    scheduler: ['diffusers', 'EulerDiscreteScheduler'],
    text_encoder: ['diffusers', 'OnnxRuntimeModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'OnnxRuntimeModel'],
    vae_decoder: ['diffusers', 'OnnxRuntimeModel'],
    vae_encoder: ['diffusers', 'OnnxRuntimeModel'],
    // Our extension: the size the model is made for, [width, height] in pixels.
    native_size: [nativeWidth, nativeHeight],
    // Our extension: how this analytic model was generated (informational; the pipeline must not need it).
    tiny_analytic: { ...opts, data_std: TINY_DATA_STD, mean_std: TINY_MEAN_STD, keep_std: TINY_KEEP_STD },
  });
  json('scheduler/scheduler_config.json', {
    _class_name: 'EulerDiscreteScheduler',
    _diffusers_version: DIFFUSERS_VERSION,
    beta_end: TINY_BETA_END,
    beta_schedule: 'scaled_linear',
    beta_start: TINY_BETA_START,
    interpolation_type: 'linear',
    num_train_timesteps: TINY_NUM_TRAIN_TIMESTEPS,
    prediction_type: opts.predictionType,
    steps_offset: 1,
    timestep_spacing: 'leading',
    trained_betas: null,
    use_karras_sigmas: false,
  });

  const tokenizer = buildTinyTokenizer();
  for (const [name, content] of Object.entries(tinyTokenizerFiles(tokenizer))) text(`tokenizer/${name}`, content);

  json('text_encoder/config.json', {
    architectures: ['CLIPTextModel'],
    model_type: 'clip_text_model',
    hidden_size: TINY_HIDDEN_SIZE,
    num_hidden_layers: TINY_NUM_LAYERS,
    max_position_embeddings: TINY_SEQUENCE_LENGTH,
    vocab_size: tokenizer.vocab.length,
    bos_token_id: tokenizer.vocab.indexOf(BOS_TOKEN),
    eos_token_id: tokenizer.vocab.indexOf(EOS_TOKEN),
    pad_token_id: tokenizer.vocab.indexOf(EOS_TOKEN),
    torch_dtype: torchDtype,
  });
  onnxFile(
    'text_encoder',
    buildTextEncoderGraph({
      tables: tinyEmbeddingTables(tokenizer.vocab),
      vocabSize: tokenizer.vocab.length,
      inputIdsType: opts.inputIdsType,
      float16: opts.float16,
      hiddenStates: opts.hiddenStates,
    }),
    opts.externalData,
    'Analytic tiny text encoder: per-layer embedding lookup (scripts/tiny-model/text-encoder-graph.ts).',
  );

  json('unet/config.json', {
    _class_name: 'UNet2DConditionModel',
    _diffusers_version: DIFFUSERS_VERSION,
    in_channels: opts.inpainting ? 9 : 4,
    out_channels: 4,
    sample_size: nativeWidth / 8,
    cross_attention_dim: TINY_HIDDEN_SIZE,
  });
  onnxFile(
    'unet',
    buildUnetGraph(opts),
    opts.externalData,
    'Analytic tiny UNet: exact posterior-mean denoiser of Gaussian latents (scripts/tiny-model/unet-graph.ts).',
  );

  for (const folder of ['vae_decoder', 'vae_encoder'] as const) {
    json(`${folder}/config.json`, {
      _class_name: 'AutoencoderKL',
      _diffusers_version: DIFFUSERS_VERSION,
      in_channels: 3,
      out_channels: 3,
      latent_channels: 4,
      sample_size: nativeWidth,
      scaling_factor: TINY_SCALING_FACTOR,
    });
  }
  onnxFile('vae_decoder', buildVaeDecoderGraph(opts), false, 'Analytic tiny VAE decoder: 1×1 linear map, ×8 nearest upsampling, clip.');
  onnxFile('vae_encoder', buildVaeEncoderGraph(opts), false, 'Analytic tiny VAE encoder: 8×8 average pool, pseudo-inverse 1×1 map.');

  text(
    'README.md',
    [
      `# ${opts.inpainting ? 'Inpainting ' : ''}analytic tiny model`,
      '',
      'Generated by `scripts/tiny-model/generate.ts` (see scripts/tiny-model/README.md); do not edit.',
      'Its UNet is the exact denoiser of Gaussian latents whose mean is set by the colour words in the prompt.',
      '',
      `Options: \`${JSON.stringify(opts)}\``,
      '',
    ].join('\n'),
  );
  return files;
}

/**
 * Writes the tiny model folder at `outDir` (created or replaced; written to a temporary sibling
 * folder first and renamed, so a crash never leaves a half-written model behind).
 *
 * @param outDir the model folder itself, e.g. `models/tiny-analytic`.
 * @throws Error for invalid options or file-system failures.
 */
export async function generateTinyModel(outDir: string, options: TinyModelOptions = {}): Promise<TinyModelInfo> {
  const dir = path.resolve(outDir);
  const files = buildTinyModelFiles(options);
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await rm(tmp, { recursive: true, force: true });
  for (const [name, bytes] of files) {
    const target = path.join(tmp, ...name.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, bytes);
  }
  await mkdir(path.dirname(dir), { recursive: true });
  try {
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (error) {
    // Another process may have written the same (deterministic) folder in between: keep theirs.
    await rm(tmp, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
  return { dir, options: resolveTinyModelOptions(options), files: [...files.keys()].sort() };
}

/** The script entry point: parses argv (see the module docstring) and writes the variants. */
async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      variant: { type: 'string', multiple: true },
      postprocess: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const known = Object.keys(TINY_VARIANTS);
  if (values.help) {
    console.log(`usage: tsx scripts/tiny-model/generate.ts [--out MODELS_DIR] [--variant NAME]... [--postprocess]\nvariants: ${known.join(', ')}, all`);
    return;
  }
  const modelsDir = values.out ?? process.env.MODELS_DIR ?? 'models';
  const requested = values.variant?.length ? values.variant : [TINY_DEFAULT_VARIANT];
  const names = requested.includes('all') ? known : requested;
  for (const name of names) {
    if (!(name in TINY_VARIANTS)) throw new Error(`unknown variant "${name}"; known: ${known.join(', ')}, all`);
    const info = await generateTinyModel(path.join(modelsDir, name), TINY_VARIANTS[name]);
    console.log(`wrote ${info.dir} (${info.files.length} files)`);
  }
  if (values.postprocess) for (const rel of await generatePostprocessStandIns(modelsDir)) console.log(`wrote ${path.join(modelsDir, rel)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`generate-model: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
