import { stat } from 'node:fs/promises';
import path from 'node:path';
import { EXIT_CODES } from './exit-codes';
import type { BackgroundFlag, LoraFlag } from './flag-parsers';
import { looksLikeHfReference, parseHfReference } from './hf-reference';
import { FORMAT_EXTENSIONS, formatOfExtension, type ImageFormat } from './image-format';
import { UserError } from './user-error';

/** The flags as commander hands them over, after the per-flag parsers (flag-parsers.ts) ran. */
export interface DrawFlags {
  size?: string;
  sampler: string;
  scheduler?: string;
  sampleSteps?: number;
  cfgScale?: number;
  /** null = -1 = random. */
  seed?: number | string | null;
  negativePrompt?: string;
  /** Every --lora, in order. */
  lora?: LoraFlag[];
  vae?: string;
  output?: string;
  format?: ImageFormat;
  background?: BackgroundFlag;
  show?: boolean;
  debug?: boolean;
  apiKey?: string;
  baseUrl: string;
  listModels?: boolean;
}

/** Where the image goes: an exact file, or a folder in which the CLI picks the default name. */
export type OutputTarget = { kind: 'file'; path: string } | { kind: 'folder'; folder: string };

/** Everything one `draw` run needs, checked and resolved. */
export interface DrawOptions {
  prompt: string;
  /** null = let the server use its default model. */
  model: string | null;
  /** "WxH", or null = the model's native size (the server decides; see README). */
  size: string | null;
  sampler: string;
  scheduler: string | null;
  steps: number | null;
  cfgScale: number | null;
  /** null = random (the server picks and reports it). */
  seed: number | string | null;
  negativePrompt: string | null;
  /** LoRAs to apply (`loras`), in the order given; empty = none. */
  loras: LoraFlag[];
  /** VAE override (`vae`), or null = the checkpoint's own. */
  vae: string | null;
  format: ImageFormat;
  /** OpenAI `background`, or null = left out (the server default, opaque). */
  background: BackgroundFlag | null;
  output: OutputTarget;
  show: boolean;
  debug: boolean;
  apiKey: string;
  /** API origin (+ optional path prefix) without trailing "/" or "/v1". */
  baseUrl: string;
}

/**
 * Turn the positional arguments and flags into DrawOptions. One positional is the prompt (the
 * server's default model is used); two are model then prompt.
 *
 * Output rules: `--output` with a known extension (.png .jpg .jpeg .webp) sets the format unless
 * `--format` says otherwise (then it is an error); without an extension the format's extension is
 * appended; an existing folder (or a path ending in "/") gets the default name inside it. The
 * output folder must already exist, checked here so no GPU time is spent on an image we cannot
 * save.
 *
 * @param cwd the folder relative paths are resolved against (the user's current directory)
 * @throws UserError (exit 2) for a missing or empty prompt, too many arguments, a malformed
 *   hf.co reference, a --format/--output clash, --background transparent with JPEG or a missing output folder; UserError with exit 3
 *   when there is no API key at all
 */
export async function resolveDrawOptions(positionals: string[], flags: DrawFlags, cwd: string): Promise<DrawOptions> {
  const args = positionals.filter((arg): arg is string => arg !== undefined);
  if (args.length > 2) {
    throw new UserError(`expected at most two arguments, [model] and [prompt], but got ${args.length}`, {
      hint: 'Quote a prompt that has spaces: draw tiny-analytic "a red apple".',
    });
  }
  if (args.length === 0) {
    throw new UserError('missing the prompt', { hint: 'Say what to draw: draw "a red apple" (run draw --help for options).' });
  }
  const [model, prompt] = args.length === 2 ? [args[0]!, args[1]!] : [null, args[0]!];
  if (model === null && looksLikeHfReference(prompt)) {
    throw new UserError(`missing the prompt after the model ${prompt}`, { hint: `Add it: draw ${prompt} "a red apple".` });
  }
  if (prompt.trim() === '') {
    throw new UserError('the prompt is empty', { hint: 'Say what to draw: draw "a red apple".' });
  }
  if (model !== null) checkModel(model);

  const apiKey = flags.apiKey?.trim() ?? '';
  if (apiKey === '') {
    throw new UserError('no API key', {
      exitCode: EXIT_CODES.AUTH,
      hint: 'Pass --api-key KEY or set IMAGE_API_KEY (`npm start` prints a development key).',
    });
  }

  const { format, output } = await resolveOutput(flags.output, flags.format, cwd);
  if (flags.background === 'transparent' && format === 'jpeg') {
    throw new UserError('--background transparent needs png or webp: JPEG has no alpha channel', {
      hint: 'Use --format png (or an .png/.webp --output), or drop --background.',
    });
  }
  return {
    prompt,
    model,
    size: flags.size ?? null,
    sampler: flags.sampler,
    scheduler: flags.scheduler ?? null,
    steps: flags.sampleSteps ?? null,
    cfgScale: flags.cfgScale ?? null,
    seed: flags.seed ?? null,
    negativePrompt: flags.negativePrompt ?? null,
    loras: flags.lora ?? [],
    vae: flags.vae?.trim() ? flags.vae.trim() : null,
    format,
    background: flags.background ?? null,
    output,
    show: flags.show ?? false,
    debug: flags.debug ?? false,
    apiKey,
    baseUrl: flags.baseUrl,
  };
}

function checkModel(model: string): void {
  if (model.trim() === '') {
    throw new UserError('the model name is empty', { hint: 'Leave it out to use the server default: draw "a red apple".' });
  }
  if (looksLikeHfReference(model) && parseHfReference(model) === null) {
    throw new UserError(`${model} is not a Hugging Face reference of the form hf.co/<org>/<repo>[:<tag>]`, {
      hint: 'For example: hf.co/gpustack/stable-diffusion-v3-5-large-turbo-GGUF:FP16.',
    });
  }
}

async function resolveOutput(
  output: string | undefined,
  formatFlag: ImageFormat | undefined,
  cwd: string,
): Promise<{ format: ImageFormat; output: OutputTarget }> {
  if (output === undefined) {
    return { format: formatFlag ?? 'png', output: { kind: 'folder', folder: '.' } };
  }
  if (output.trim() === '') {
    throw new UserError('--output is empty', { hint: 'Give a file name such as --output apple.png, or leave it out.' });
  }
  if (/[\\/]$/.test(output) || (await isFolder(path.resolve(cwd, output)))) {
    await requireFolder(output, cwd);
    return { format: formatFlag ?? 'png', output: { kind: 'folder', folder: output } };
  }
  const extension = path.extname(output);
  const extensionFormat = formatOfExtension(extension);
  if (extensionFormat !== null && formatFlag !== undefined && formatFlag !== extensionFormat) {
    throw new UserError(`--output ${output} names a ${extensionFormat} file but --format asks for ${formatFlag}`, {
      hint: `Drop --format, or use the ${FORMAT_EXTENSIONS[formatFlag]} extension.`,
    });
  }
  const format = formatFlag ?? extensionFormat ?? 'png';
  // "apple" or "apple.v2" get the format's extension so viewers recognise the file.
  const filePath = extensionFormat === null ? `${output}${FORMAT_EXTENSIONS[format]}` : output;
  await requireFolder(path.dirname(filePath), cwd);
  return { format, output: { kind: 'file', path: filePath } };
}

async function isFolder(absolute: string): Promise<boolean> {
  try {
    return (await stat(absolute)).isDirectory();
  } catch {
    return false;
  }
}

async function requireFolder(folder: string, cwd: string): Promise<void> {
  if (!(await isFolder(path.resolve(cwd, folder)))) {
    throw new UserError(`the output folder ${folder} does not exist`, {
      hint: `Create it first (mkdir -p ${JSON.stringify(folder)}) or choose another --output.`,
    });
  }
}
