import { Command, Option } from 'commander';
import { SAMPLER_NAMES, SCHEDULER_NAMES } from '@image-api/shared/sampler-names';
import type { DrawFlags } from './draw-options';
import { DEFAULT_BASE_URL, parseBackground, parseBaseUrl, parseCfgScale, parseFormat, parseLora, parseSeed, parseSize, parseSteps } from './flag-parsers';

/** The seed doc's (draw-cli.md) default sampler; sent explicitly so the CLI behaves the same on every server. */
export const DEFAULT_SAMPLER = 'euler';

const HELP_AFTER = `
Model and prompt:
  One argument is the prompt (the server's default model draws it); two are the model, then the prompt.
  The model can be a served model id or a Hugging Face reference hf.co/<org>/<repo>[:<tag or file>].

Size:
  Without --size the server uses the model's native size (512x512 for SD1.x models); this avoids
  asking a model for a size it does not support. Pass --size 512x512 to force it.

Add-ons:
  --lora and --vae take the ids --list-models shows (kind lora / vae: paths under the server's
  MODELS_DIR/loras and MODELS_DIR/vae without the extension). A1111's <lora:name:0.8> in the prompt works too.

Output:
  The image is saved as <prompt words>-<seed>.<ext> in the current folder (e.g. red-apple-42.png)
  unless --output names a file or a folder. An existing file is never overwritten: a number is added
  (red-apple-42-1.png). The saved path is the only thing printed on stdout.

Environment:
  IMAGE_API_KEY   the API key (--api-key wins)
  IMAGE_API_URL   the API address (--base-url wins), default ${DEFAULT_BASE_URL}

Exit codes:
  0 saved, 1 unexpected error, 2 bad arguments (also a 400 about a field set by a flag),
  3 no key or key refused (401/403), 4 rate limited (429), 5 server error or unreachable, 6 not found.

Examples:
  $ draw "a red apple"
  $ draw tiny-analytic "a blue sky" --size 256x256 --seed 42 --output sky.png
  $ draw sd15/model.safetensors "a castle" --lora styles/ink:0.8 --lora detail --vae sd-vae-ft-mse
  $ draw hf.co/gpustack/stable-diffusion-v3-5-large-turbo-GGUF:FP16 "a lighthouse at dusk" --show
  $ IMAGE_API_URL=https://images.example.com draw "green grass" --sampler dpm++2m --scheduler karras
`;

/**
 * The commander definition of `draw [model] [prompt]`. Errors are not handled here: the caller
 * sets exitOverride/configureOutput (run-cli.ts). `action` receives every positional argument
 * (excess ones included, so the caller can explain how to quote a prompt) and the parsed flags.
 */
export function buildProgram(action: (positionals: string[], flags: DrawFlags) => Promise<void>): Command {
  const program = new Command('draw')
    .description('Draw an image from a text prompt with the image API, show a progress bar, and save it.')
    .argument('[model]', 'model id or hf.co/<org>/<repo>[:tag]; leave out to use the server default')
    .argument('[prompt]', 'what to draw, in quotes')
    .option('--size <WxH>', 'image size in pixels, e.g. 512x768 (default: the model native size)', parseSize)
    .option('--sampler <name>', `sampler (sent as sample_method): ${SAMPLER_NAMES.sdcpp.join(', ')}`, DEFAULT_SAMPLER)
    .option(
      '--scheduler <name>',
      `noise schedule (sent as schedule_method): ${SCHEDULER_NAMES.sdcpp.join(', ')} (default: the server default)`,
    )
    .option('--sample-steps <n>', 'number of sampling steps (default: the server default)', parseSteps)
    .option('--cfg-scale <x>', 'classifier-free guidance scale (default: the server default)', parseCfgScale)
    .option('--seed <n>', 'random seed, for reproducible images (default: random; -1 = random)', parseSeed)
    .option('--negative-prompt <text>', 'what the image should not contain')
    .option('--lora <name[:strength]>', 'apply a LoRA (sent in loras; repeatable, at most 5; strength -4..4, default 1)', parseLora)
    .option('--vae <name>', 'decode with this VAE instead of the checkpoint\'s (sent as vae)')
    .option('-o, --output <path>', 'file (or existing folder) to save to (default: <prompt>-<seed>.png here)')
    .option('--format <format>', 'png, jpeg or webp (default: from the --output extension, else png)', parseFormat)
    .option(
      '--background <mode>',
      'transparent, opaque or auto (sent as background; transparent needs png or webp and a server with a matting model)',
      parseBackground,
    )
    .option('--show', 'open the saved image in the default image viewer')
    .option('-d, --debug', 'print the request and the response metadata to stderr (never the API key)')
    .addOption(new Option('--api-key <key>', 'API key').env('IMAGE_API_KEY'))
    .addOption(
      new Option('--base-url <url>', 'API address').env('IMAGE_API_URL').default(DEFAULT_BASE_URL).argParser(parseBaseUrl),
    )
    .option('--list-models', 'list the models the server offers, then exit')
    .allowExcessArguments(true)
    .showHelpAfterError("(run 'draw --help' to see every option)")
    .addHelpText('after', HELP_AFTER)
    .action(async (_model: unknown, _prompt: unknown, flags: DrawFlags, command: Command) => {
      await action([...command.args], flags);
    });
  return program;
}
