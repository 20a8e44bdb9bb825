import { invalidParameter } from '../lib/api-error';
import { unsupportedMediaType } from './input-errors';

/** A request of the image routes, whichever encoding it came in. */
export interface ImageRequestBody {
  /** Every non-image field (multipart/urlencoded: strings; JSON: as sent). */
  fields: Record<string, unknown>;
  /** `image` (or the first of `image[]` / a JSON array): a file, or a URL/data URL/base64 string. */
  image?: string | Blob;
  /** How many images were sent (only the first is used). */
  imageCount: number;
  /** `mask`: a file or a URL/data URL/base64 string. */
  mask?: string | Blob;
}

const IMAGE_FIELDS = new Set(['image', 'image[]']);
const MASK_FIELDS = new Set(['mask', 'mask[]']);

/**
 * Read the body of /v1/images/edits and /v1/images/variations: multipart/form-data (OpenAI's format;
 * parsed by the runtime's own multipart parser), application/x-www-form-urlencoded, or a JSON object
 * whose `image`/`mask` are URL/data-URL/base64 strings. Call it after bodySizeLimit.
 * For repeated text fields the first value is used.
 * @throws ApiError 415 `unsupported_media_type` for other content types; 400 for an unparsable body,
 *   a non-object JSON body, or a file sent in a text field.
 */
export async function readImageRequest(request: Request): Promise<ImageRequestBody> {
  const type = (request.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/json') return readJson(request);
  if (type === 'multipart/form-data' || type === 'application/x-www-form-urlencoded') return readForm(request);
  throw unsupportedMediaType(
    `Send the request as multipart/form-data (files in "image" and "mask") or as JSON; got content-type "${type || 'none'}".`,
  );
}

async function readForm(request: Request): Promise<ImageRequestBody> {
  let form: FormData;
  try {
    form = await request.formData();
  } catch {
    throw invalidParameter(null, 'The form body could not be parsed (malformed multipart/form-data).', 'invalid_request');
  }
  const body: ImageRequestBody = { fields: {}, imageCount: 0 };
  for (const [name, value] of form.entries()) {
    if (IMAGE_FIELDS.has(name)) {
      body.imageCount += 1;
      body.image ??= value;
    } else if (MASK_FIELDS.has(name)) {
      body.mask ??= value;
    } else if (typeof value !== 'string') {
      throw invalidParameter(name, `${name} must be a text field, not a file.`);
    } else if (!(name in body.fields)) {
      body.fields[name] = value;
    }
  }
  return body;
}

async function readJson(request: Request): Promise<ImageRequestBody> {
  let parsed: unknown;
  try {
    parsed = await request.json();
  } catch {
    throw invalidParameter(null, 'The request body is not valid JSON.', 'invalid_request');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidParameter(null, 'The request body must be a JSON object.');
  }
  const { image, mask, ...fields } = parsed as Record<string, unknown>;
  const body: ImageRequestBody = { fields, imageCount: 0 };
  const images = image === undefined ? [] : Array.isArray(image) ? image : [image];
  for (const item of images) {
    if (typeof item !== 'string') throw invalidParameter('image', 'image must be a URL, a data: URL or base64 (or an array of them).');
  }
  body.imageCount = images.length;
  body.image = images[0] as string | undefined;
  if (mask !== undefined) {
    if (typeof mask !== 'string') throw invalidParameter('mask', 'mask must be a URL, a data: URL or base64.');
    body.mask = mask;
  }
  return body;
}
