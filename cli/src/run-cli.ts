import path from 'node:path';
import { CommanderError } from 'commander';
import { ApiError } from './api-error';
import { createDebugLog, redact } from './debug-log';
import { resolveDrawOptions, type DrawFlags, type DrawOptions } from './draw-options';
import { EXIT_CODES, type ExitCode } from './exit-codes';
import { generateImages, type GeneratedImage } from './generate-images';
import { FORMAT_EXTENSIONS } from './image-format';
import { listModels } from './list-models';
import { openInViewer } from './open-viewer';
import { defaultOutputName } from './output-name';
import { buildProgram } from './program';
import { createProgressDisplay } from './progress-display';
import { UserError } from './user-error';
import { writeUniqueFile } from './write-unique-file';

/** How long the "which models are there?" lookup after a model_not_found may take. */
const MODEL_HINT_TIMEOUT_MS = 3000;

/** The process plumbing runCli uses; main.ts passes the real one. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  /** stderr; the progress bar draws on it when it is a terminal. */
  stderr: NodeJS.WriteStream;
  /** The folder relative output paths are resolved against. */
  cwd: string;
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
  /** The clock used for default file names when the server reports no seed. */
  now?: () => Date;
}

/**
 * Run `draw` with `argv` (the arguments after the program name) and return the exit code
 * (cli/README.md): 0 saved; 1 unexpected; 2 usage; 3 auth; 4 rate limited; 5 server/network;
 * 6 not found; 130 interrupted. Never throws: every failure becomes one `error: …` line on
 * stderr (plus a hint line for usage errors). stdout receives only the saved path(s), one per line.
 */
export async function runCli(argv: string[], io: CliIo): Promise<ExitCode> {
  let secrets: string[] = [];
  const writeErr = (text: string): void => {
    io.stderr.write(redact(text, secrets));
  };
  let debugEnabled = false;
  /** Where to look up the model list after a model_not_found (set once the flags are parsed). */
  let api: { baseUrl: string; apiKey: string } | null = null;

  const program = buildProgram(async (positionals: string[], flags: DrawFlags) => {
    secrets = flags.apiKey ? [flags.apiKey.trim()].filter(Boolean) : [];
    debugEnabled = flags.debug ?? false;
    if (secrets[0]) api = { baseUrl: flags.baseUrl, apiKey: secrets[0] };
    if (flags.listModels) {
      await printModels(flags, io);
      return;
    }
    const options = await resolveDrawOptions(positionals, flags, io.cwd);
    await draw(options, io, writeErr);
  });
  program.exitOverride();
  program.configureOutput({
    writeOut: (text) => io.stdout.write(text),
    writeErr,
    outputError: (text, write) => write(text),
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_CODES.OK;
  } catch (error) {
    return await reportError(error, writeErr, api, debugEnabled);
  }
}

/** Generate, save, print the path, and optionally open the viewer. */
async function draw(options: DrawOptions, io: CliIo, writeErr: (text: string) => void): Promise<void> {
  const debug = createDebugLog(options.debug, writeErr, [options.apiKey]);
  const progress = createProgressDisplay(io.stderr);
  let images: GeneratedImage[];
  try {
    images = await generateImages(options, { onProgress: (update) => progress.update(update), onDebug: debug, signal: io.signal });
  } finally {
    progress.stop();
  }
  const now = (io.now ?? (() => new Date()))();
  for (const image of images) {
    const requested =
      options.output.kind === 'file'
        ? options.output.path
        : path.join(options.output.folder, defaultOutputName(options.prompt, image.seed, image.format, now));
    if (options.output.kind === 'file' && image.format !== options.format) {
      writeErr(
        `warning: asked for ${options.format} but the server sent ${image.format}; ` +
          `the file is ${image.format} whatever its name (use a ${FORMAT_EXTENSIONS[image.format]} name)\n`,
      );
    }
    let written: string;
    try {
      written = await writeUniqueFile(path.resolve(io.cwd, requested), image.bytes);
    } catch (error) {
      throw new UserError(`could not save the image to ${requested}: ${(error as Error).message}`, {
        exitCode: EXIT_CODES.UNEXPECTED,
        hint: 'Check that the folder is writable and has space, or choose another --output.',
      });
    }
    // Print the path in the form the user gave it (relative stays relative).
    const shown = path.isAbsolute(requested) ? written : path.relative(io.cwd, written) || written;
    if (options.output.kind === 'file' && written !== path.resolve(io.cwd, requested)) {
      writeErr(`warning: ${requested} already exists; saved as ${shown} instead\n`);
    }
    debug(`saved ${image.bytes.length} bytes (${image.format}, seed ${image.seed ?? 'unknown'}) to ${written}`);
    io.stdout.write(`${shown}\n`);
    if (options.show) {
      const warning = await openInViewer(written);
      if (warning) writeErr(`warning: ${warning}\n`);
    }
  }
}

/** `draw --list-models`: one model per line, `id  WxH  capabilities`; add-ons `id  kind  architecture`. */
async function printModels(flags: DrawFlags, io: CliIo): Promise<void> {
  const apiKey = flags.apiKey?.trim() ?? '';
  if (apiKey === '') {
    throw new UserError('no API key', {
      exitCode: EXIT_CODES.AUTH,
      hint: 'Pass --api-key KEY or set IMAGE_API_KEY (`npm start` prints a development key).',
    });
  }
  for (const model of await listModels(flags.baseUrl, apiKey, { signal: io.signal })) {
    if (model.kind !== 'checkpoint') {
      // Add-ons (--lora / --vae names, embeddings): their kind and the architecture they fit.
      io.stdout.write(`${model.id}\t${model.kind}\t${model.architecture ?? '-'}\n`);
      continue;
    }
    const size = model.nativeSize ? `${model.nativeSize[0]}x${model.nativeSize[1]}` : '-';
    io.stdout.write(`${model.id}\t${size}\t${model.capabilities.join(',') || '-'}\n`);
  }
}

/** Print one clear line for `error` and pick its exit code. */
async function reportError(
  error: unknown,
  writeErr: (text: string) => void,
  api: { baseUrl: string; apiKey: string } | null,
  debugEnabled: boolean,
): Promise<ExitCode> {
  if (error instanceof CommanderError) {
    // Commander already printed its message (or the help); 0 for --help/--version.
    return error.exitCode === 0 ? EXIT_CODES.OK : EXIT_CODES.USAGE;
  }
  if (error instanceof UserError) {
    writeErr(`error: ${error.message}\n`);
    if (error.hint) writeErr(`${error.hint}\n`);
    return error.exitCode;
  }
  if (error instanceof ApiError) {
    if (error.code === 'model_not_found' && api) await addModelHint(error, api);
    writeErr(`${error.toLine()}\n`);
    return error.exitCode;
  }
  if (error instanceof Error && error.name === 'AbortError') {
    writeErr('error: interrupted\n');
    return EXIT_CODES.INTERRUPTED;
  }
  writeErr(`error: unexpected failure: ${error instanceof Error ? error.message : String(error)}\n`);
  if (debugEnabled && error instanceof Error && error.stack) writeErr(`debug: ${error.stack}\n`);
  return EXIT_CODES.UNEXPECTED;
}

/** After model_not_found, name the models that do exist (best effort, never fails the report). */
async function addModelHint(error: ApiError, api: { baseUrl: string; apiKey: string }): Promise<void> {
  try {
    const signal = AbortSignal.timeout(MODEL_HINT_TIMEOUT_MS);
    // The kind the refused field names: loras.1.model_name → LoRAs, vae → VAEs, otherwise checkpoints.
    const field = (error.param ?? '').split(/[.[]/)[0];
    const kind = field === 'loras' ? 'lora' : field === 'vae' ? 'vae' : field === 'embeddings' ? 'textualinversion' : 'checkpoint';
    const models = (await listModels(api.baseUrl, api.apiKey, { signal })).filter((model) => model.kind === kind);
    const what = kind === 'lora' ? 'LoRAs' : kind === 'vae' ? 'VAEs' : kind === 'textualinversion' ? 'embeddings' : 'models';
    if (models.length > 0) error.suffix = `available ${what}: ${models.map((model) => model.id).join(', ')}`;
  } catch {
    // The hint is a courtesy; the error line stands without it.
  }
}
