/**
 * Browser module /playground/request-builder.js: pure functions that turn the page's inputs into the
 * exact public API request (body of POST /v1/images/generations, or the fields of the multipart
 * POST /v1/images/edits), and the size choices a model allows. No DOM, no globals: the config
 * (config.js) is passed in, so the functions can be unit-tested outside the browser.
 *
 * Kept as text (String.raw, so no backticks or dollar-brace inside) because the Worker serves it as is.
 */
export const REQUEST_BUILDER_JS = String.raw`// Pure request builders of the image playground (no DOM access).

/** A user input the page cannot send; field is the form field's name (e.g. "seed"). */
export class InputError extends Error {
  constructor(field, message) {
    super(message);
    this.name = 'InputError';
    this.field = field;
  }
}

/** Smallest side and size step the public API accepts (shared/src/api/size.ts). */
export const MIN_SIDE = 64;
export const SIDE_STEP = 8;

const SQUARE_SIDES = [256, 384, 512, 640, 768, 896, 1024, 1280, 1536, 2048];
const ASPECTS = [[3, 2], [2, 3], [4, 3], [3, 4], [16, 9], [9, 16]];

/**
 * The sizes offered for a model: its native size first-class, squares and common aspect ratios (long
 * side from SQUARE_SIDES, short side rounded to a multiple of 64), all with width * height <= max_pixels.
 * @param model {{native_size: [number, number], max_pixels: number}}
 * @returns {{value: string, width: number, height: number, native: boolean}[]} sorted by pixel count
 */
export function sizeOptions(model) {
  const nativeWidth = model.native_size[0];
  const nativeHeight = model.native_size[1];
  const seen = new Map();
  const add = (width, height, native) => {
    const value = width + 'x' + height;
    if (seen.has(value)) return;
    if (!native && width * height > model.max_pixels) return;
    seen.set(value, { value: value, width: width, height: height, native: native });
  };
  add(nativeWidth, nativeHeight, true);
  for (const side of SQUARE_SIDES) add(side, side, false);
  for (const aspect of ASPECTS) {
    for (const long of SQUARE_SIDES) {
      const short = Math.round((long * Math.min(aspect[0], aspect[1])) / Math.max(aspect[0], aspect[1]) / 64) * 64;
      if (aspect[0] >= aspect[1]) add(long, short, false);
      else add(short, long, false);
    }
  }
  return Array.from(seen.values()).sort((a, b) => a.width * a.height - b.width * b.height || b.width - a.width);
}

/**
 * Scale an uploaded image's size so the edit fits the model: width * height <= maxPixels, both sides
 * multiples of 8 and at least 64 (rounded down, aspect ratio kept as closely as the steps allow).
 * @returns {{width: number, height: number, resized: boolean}}
 */
export function fitEditSize(width, height, maxPixels) {
  const scale = Math.min(1, Math.sqrt(maxPixels / (width * height)));
  const fit = (side) => Math.max(MIN_SIDE, Math.floor((side * scale) / SIDE_STEP) * SIDE_STEP);
  const fitted = { width: fit(width), height: fit(height) };
  while (fitted.width * fitted.height > maxPixels && (fitted.width > MIN_SIDE || fitted.height > MIN_SIDE)) {
    if (fitted.width >= fitted.height) fitted.width -= SIDE_STEP;
    else fitted.height -= SIDE_STEP;
  }
  fitted.resized = fitted.width !== width || fitted.height !== height;
  return fitted;
}

function parseInteger(field, text, min, max) {
  const value = Number(String(text).trim());
  if (String(text).trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    throw new InputError(field, field + ' must be a whole number from ' + min + ' to ' + max + '.');
  }
  return value;
}

/** Largest seed: 2^64 − 1 (torch.manual_seed's uint64 range). */
const MAX_SEED_TEXT = '18446744073709551615';

/** A seed 0..2^64 − 1: a number up to 2^53 − 1, above that its exact decimal string (which the API takes). */
function parseSeed(text) {
  const digits = /^(0|[1-9][0-9]{0,19})$/.test(text);
  if (!digits || (text.length === 20 && text > MAX_SEED_TEXT)) {
    throw new InputError('seed', 'seed must be a whole number from 0 to ' + MAX_SEED_TEXT + ' (or -1 for random).');
  }
  return Number.isSafeInteger(Number(text)) ? Number(text) : text;
}

function parseDecimal(field, text, min, max) {
  const value = Number(String(text).trim());
  if (String(text).trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw new InputError(field, field + ' must be a number from ' + min + ' to ' + max + '.');
  }
  return value;
}

/**
 * The JSON body for the current inputs, fields in a fixed order (the order View Code shows).
 *
 * - paramStyle "openai": model, prompt, n, size, response_format, quality, style, output_format, and background
 *   when not "auto" (the API's default).
 * - paramStyle "advanced": model, prompt, n, size, response_format (b64_json: the page shows images
 *   inline), sample_method, schedule_method, sampling_steps, guidance, cfg_scale, negative_prompt (when
 *   not empty), seed (when given; empty = random), preview, strength in edit mode, and the add-ons picked:
 *   loras [{model_name, strength}], embeddings [{model_name}], vae.
 * - stream: true when inputs.stream (the page streams to show progress, queue position and previews).
 * - model is left out when empty (the server's default model), size when empty (the native size).
 *
 * @param inputs {{paramStyle: string, edit: boolean, stream: boolean, model: string, prompt: string,
 *   n: string|number, size: string, response_format: string, quality: string, style: string,
 *   output_format: string, background?: string, sample_method: string, schedule_method: string, sampling_steps: string|number,
 *   guidance: string|number, cfg_scale: string|number, negative_prompt: string, seed: string|number,
 *   preview: string, strength: string|number, loras?: {model_name: string, strength: string|number}[],
 *   embeddings?: string[], vae?: string}}
 * @param config the PLAYGROUND_CONFIG of config.js
 * @throws InputError naming the field for a number out of range or not a number
 */
export function buildRequestBody(inputs, config) {
  const body = {};
  if (inputs.model) body.model = inputs.model;
  body.prompt = inputs.prompt;
  body.n = parseInteger('n', inputs.n, 1, config.maxImages);
  if (inputs.size) body.size = inputs.size;
  if (inputs.paramStyle === 'advanced') {
    body.response_format = 'b64_json';
    body.sample_method = inputs.sample_method;
    body.schedule_method = inputs.schedule_method;
    body.sampling_steps = parseInteger('sampling_steps', inputs.sampling_steps, 1, 200);
    // Distilled guidance only for FLUX-class models: sent when the box is filled in (other models refuse it).
    if (String(inputs.guidance === undefined || inputs.guidance === null ? '' : inputs.guidance).trim() !== '') {
      body.guidance = parseDecimal('guidance', inputs.guidance, 0, 50);
    }
    body.cfg_scale = parseDecimal('cfg_scale', inputs.cfg_scale, 0, 50);
    const negative = String(inputs.negative_prompt || '');
    if (negative.trim() !== '') body.negative_prompt = negative;
    const seedText = String(inputs.seed === undefined || inputs.seed === null ? '' : inputs.seed).trim();
    if (seedText !== '' && seedText !== '-1') body.seed = parseSeed(seedText);
    body.preview = inputs.preview;
    if (inputs.edit) body.strength = parseDecimal('strength', inputs.strength, 0, 1);
    // Add-ons (API extension): only what was picked.
    const loras = inputs.loras || [];
    if (loras.length > config.maxAddons) throw new InputError('loras', 'At most ' + config.maxAddons + ' LoRAs per request.');
    if (loras.length > 0) {
      body.loras = loras.map((lora) => ({ model_name: lora.model_name, strength: parseDecimal('LoRA strength', lora.strength, -4, 4) }));
    }
    const embeddings = inputs.embeddings || [];
    if (embeddings.length > config.maxAddons) throw new InputError('embeddings', 'At most ' + config.maxAddons + ' embeddings per request.');
    if (embeddings.length > 0) body.embeddings = embeddings.map((name) => ({ model_name: name }));
    if (inputs.vae) body.vae = inputs.vae;
  } else {
    body.response_format = inputs.response_format;
    body.quality = inputs.quality;
    body.style = inputs.style;
    body.output_format = inputs.output_format;
    if (inputs.background && inputs.background !== 'auto') body.background = inputs.background;
  }
  if (inputs.stream) body.stream = true;
  return body;
}

/**
 * The text fields of the multipart POST /v1/images/edits for a body from buildRequestBody (the image
 * and mask files are added by the caller): every field as a [name, string] pair, in body order.
 */
export function editFormFields(body) {
  return Object.keys(body).map((name) => [name, formValue(body[name])]);
}

/** One multipart text value: lists (loras, embeddings) as JSON text, which the API parses; the rest as text. */
export function formValue(value) {
  return value !== null && typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** Output format of a body (png unless the OpenAI panel chose another). */
export function bodyOutputFormat(body) {
  return body.output_format || 'png';
}
`;
