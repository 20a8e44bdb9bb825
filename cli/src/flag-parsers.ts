import { InvalidArgumentError } from 'commander';
import { isImageFormat, type ImageFormat } from './image-format';

/**
 * Commander argument parsers for the `draw` flags. Each checks one flag's syntax and throws
 * commander's InvalidArgumentError with a sentence saying what a valid value looks like; commander
 * prints it as `error: option '--size <WxH>' argument 'big' is invalid. <sentence>` and the CLI
 * exits with 2. Whether a value suits the model (multiples of 8, maximum pixels, a sampler the
 * server knows) is the server's call: it answers 400 naming the field.
 */

/** Where `draw` sends requests when neither --base-url nor IMAGE_API_URL is given (`npm start`'s edge). */
export const DEFAULT_BASE_URL = 'http://127.0.0.1:8787';

/** Largest seed the API accepts: 2^64 − 1, torch.manual_seed's uint64 range (shared/src/seed.ts). */
export const MAX_SEED = 18_446_744_073_709_551_615n;

/**
 * `--size WxH` → "WxH" normalised (e.g. " 512 X 768" → "512x768"); width and height in pixels.
 * @throws InvalidArgumentError unless two positive whole numbers joined by "x"
 */
export function parseSize(value: string): string {
  const match = /^\s*(\d{1,5})\s*[x×]\s*(\d{1,5})\s*$/i.exec(value);
  if (!match || Number(match[1]) === 0 || Number(match[2]) === 0) {
    throw new InvalidArgumentError('Give width x height in pixels, e.g. --size 512x512 or --size 768x512.');
  }
  return `${Number(match[1])}x${Number(match[2])}`;
}

/**
 * `--seed N` → an integer in [0, 2^64 − 1]: a number up to 2^53 − 1, above that its exact decimal string
 * (the API takes seeds as JSON integers or decimal strings); null for -1 ("random").
 * @throws InvalidArgumentError for anything else
 */
export function parseSeed(value: string): number | string | null {
  const trimmed = value.trim();
  if (trimmed === '-1') return null;
  if (!/^(0|[1-9][0-9]{0,19})$/.test(trimmed) || BigInt(trimmed) > MAX_SEED) {
    throw new InvalidArgumentError(`The seed is a whole number from 0 to ${MAX_SEED} (or -1 for random).`);
  }
  return Number.isSafeInteger(Number(trimmed)) ? Number(trimmed) : trimmed;
}

/**
 * `--sample-steps N` → a positive integer number of sampling steps.
 * @throws InvalidArgumentError unless a whole number ≥ 1
 */
export function parseSteps(value: string): number {
  const trimmed = value.trim();
  if (!/^\d+$/.test(trimmed) || Number(trimmed) < 1) {
    throw new InvalidArgumentError('The number of sampling steps is a whole number of at least 1, e.g. --sample-steps 20.');
  }
  return Number(trimmed);
}

/**
 * `--cfg-scale X` → a finite number ≥ 0 (classifier-free guidance scale; 1 = no guidance).
 * @throws InvalidArgumentError unless a non-negative decimal number
 */
export function parseCfgScale(value: string): number {
  const trimmed = value.trim();
  const number = Number(trimmed);
  if (trimmed === '' || !Number.isFinite(number) || number < 0) {
    throw new InvalidArgumentError('The CFG scale is a number of 0 or more, e.g. --cfg-scale 7.5.');
  }
  return number;
}

/**
 * `--format png|jpeg|webp` (also "jpg") → the API's `output_format` value.
 * @throws InvalidArgumentError for other formats
 */
export function parseFormat(value: string): ImageFormat {
  const lower = value.trim().toLowerCase();
  const format = lower === 'jpg' ? 'jpeg' : lower;
  if (!isImageFormat(format)) throw new InvalidArgumentError('Choose png, jpeg or webp.');
  return format;
}

/** OpenAI's `background` values. */
export type BackgroundFlag = 'transparent' | 'opaque' | 'auto';

/**
 * `--background transparent|opaque|auto` (case-insensitive) → the API's `background` value (OpenAI style:
 * transparent needs png or webp and a deployment with a matting model; auto lets the server choose, which is
 * opaque here).
 * @throws InvalidArgumentError for other values
 */
export function parseBackground(value: string): BackgroundFlag {
  const lower = value.trim().toLowerCase();
  if (lower !== 'transparent' && lower !== 'opaque' && lower !== 'auto') throw new InvalidArgumentError('Choose transparent, opaque or auto.');
  return lower;
}

/**
 * `--base-url` / IMAGE_API_URL → the API origin plus any path prefix, without a trailing slash
 * and without a trailing "/v1" (people paste OpenAI-SDK style base URLs; the CLI adds /v1 itself).
 * An empty value (`IMAGE_API_URL=`) means DEFAULT_BASE_URL, as if the variable were unset.
 * @throws InvalidArgumentError unless an http(s) URL
 */
export function parseBaseUrl(value: string): string {
  if (value.trim() === '') return DEFAULT_BASE_URL;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new InvalidArgumentError('Give the API address as a URL, e.g. --base-url http://127.0.0.1:8787.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError('The API address must start with http:// or https://.');
  }
  if (url.search || url.hash) {
    throw new InvalidArgumentError('The API address takes no ?query or #fragment, e.g. http://127.0.0.1:8787.');
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '').replace(/\/v1$/, '');
}

/** One `--lora`: a LoRA id (GET /v1/models, kind "lora") and its strength. */
export interface LoraFlag {
  model_name: string;
  strength: number;
}

/** LoRA strengths the API accepts (shared/src/api/addon-fields.ts). */
const LORA_STRENGTH_RANGE = [-4, 4] as const;

/**
 * `--lora name[:strength]` (repeatable) → the list so far plus this LoRA; strength default 1. The strength is what
 * follows the last ":" when that is a number, so ids with folders (`styles/ink:0.8`) work.
 * @throws InvalidArgumentError for an empty name or a strength outside −4..4
 */
export function parseLora(value: string, previous: LoraFlag[] = []): LoraFlag[] {
  const trimmed = value.trim();
  const colon = trimmed.lastIndexOf(':');
  const tail = colon >= 0 ? trimmed.slice(colon + 1).trim() : '';
  const hasStrength = colon >= 0 && tail !== '' && Number.isFinite(Number(tail));
  const name = (hasStrength ? trimmed.slice(0, colon) : trimmed).trim();
  const strength = hasStrength ? Number(tail) : 1;
  if (name === '' || (colon === trimmed.length - 1 && colon >= 0)) {
    throw new InvalidArgumentError('Give a LoRA id and optionally its strength, e.g. --lora styles/ink or --lora styles/ink:0.8 (list them with --list-models).');
  }
  if (strength < LORA_STRENGTH_RANGE[0] || strength > LORA_STRENGTH_RANGE[1]) {
    throw new InvalidArgumentError(`The LoRA strength is a number from ${LORA_STRENGTH_RANGE[0]} to ${LORA_STRENGTH_RANGE[1]}, e.g. --lora ${name}:0.8.`);
  }
  return [...previous, { model_name: name, strength }];
}
