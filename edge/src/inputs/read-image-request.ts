import { MAX_EDIT_IMAGES } from '@image-api/shared/api/image-edits';
import { invalidParameter } from '../lib/api-error';
import { unsupportedMediaType } from './input-errors';
import { parseJsonKeepingSeeds } from './lossless-json';

/** One input image as sent, with the field name to use in errors ("image", "image[1]", "images[1].image_url"). */
export interface SentImage {
  value: string | Blob;
  param: string;
}

/** A request of the image routes, whichever encoding it came in. */
export interface ImageRequestBody {
  /** Every non-image field (multipart/urlencoded: strings; JSON: as sent). */
  fields: Record<string, unknown>;
  /** `image` (or the first of `image[]` / a JSON array / `images`): a file, or a URL/data URL/base64 string. */
  image?: string | Blob;
  /** Every input image in order (at most MAX_EDIT_IMAGES); `images[0]` is `image`. */
  images: SentImage[];
  /** How many images were sent. */
  imageCount: number;
  /** `mask`: a file or a URL/data URL/base64 string. */
  mask?: string | Blob;
}

const IMAGE_FIELDS = new Set(['image', 'image[]']);
const MASK_FIELDS = new Set(['mask', 'mask[]']);

/**
 * Read the body of /v1/images/edits and /v1/images/variations: multipart/form-data (OpenAI's format;
 * parsed by the runtime's own multipart parser), application/x-www-form-urlencoded, or a JSON object
 * whose `image`/`mask` are URL/data-URL/base64 strings (`image` may be an array), or OpenAI's JSON form
 * `images: [{image_url}]` and `mask: {image_url}`. Up to MAX_EDIT_IMAGES (16) images in order: multipart
 * `image` / `image[]` fields, or the array. Call it after bodySizeLimit. For repeated text fields the first
 * value is used.
 * @throws ApiError 415 `unsupported_media_type` for other content types; 400 for an unparsable body,
 *   a non-object JSON body, a file sent in a text field, or more than 16 images (naming `image`).
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
  const body: ImageRequestBody = { fields: {}, images: [], imageCount: 0 };
  for (const [name, value] of form.entries()) {
    if (IMAGE_FIELDS.has(name)) {
      body.images.push({ value, param: body.images.length === 0 ? 'image' : `image[${body.images.length}]` });
    } else if (MASK_FIELDS.has(name)) {
      body.mask ??= value;
    } else if (typeof value !== 'string') {
      throw invalidParameter(name, `${name} must be a text field, not a file.`);
    } else if (!(name in body.fields)) {
      body.fields[name] = value;
    }
  }
  return withImageCount(body);
}

/** Set image/imageCount from `images`, refusing more than MAX_EDIT_IMAGES. */
function withImageCount(body: ImageRequestBody): ImageRequestBody {
  if (body.images.length > MAX_EDIT_IMAGES) {
    throw invalidParameter('image', `At most ${MAX_EDIT_IMAGES} images may be sent; got ${body.images.length}.`);
  }
  body.imageCount = body.images.length;
  body.image = body.images[0]?.value;
  return body;
}

async function readJson(request: Request): Promise<ImageRequestBody> {
  let parsed: unknown;
  try {
    parsed = parseJsonKeepingSeeds(await request.text());
  } catch {
    throw invalidParameter(null, 'The request body is not valid JSON.', 'invalid_request');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidParameter(null, 'The request body must be a JSON object.');
  }
  const { image, images, mask, ...fields } = parsed as Record<string, unknown>;
  const body: ImageRequestBody = { fields, images: [], imageCount: 0 };
  if (image !== undefined && images !== undefined) throw invalidParameter('images', 'Send either image or images, not both.');
  if (image !== undefined) {
    const list = Array.isArray(image) ? image : [image];
    list.forEach((item, i) => {
      const param = Array.isArray(image) ? `image[${i}]` : 'image';
      if (typeof item !== 'string') throw invalidParameter(param, 'image must be a URL, a data: URL or base64 (or an array of them).');
      body.images.push({ value: item, param: i === 0 ? 'image' : param });
    });
  }
  if (images !== undefined) {
    if (!Array.isArray(images)) throw invalidParameter('images', 'images must be an array of {"image_url": "<URL, data: URL or base64>"}.');
    images.forEach((item, i) => body.images.push({ value: imageUrlOf(item, `images[${i}]`), param: `images[${i}].image_url` }));
  }
  if (mask !== undefined) body.mask = typeof mask === 'string' ? mask : imageUrlOf(mask, 'mask');
  return withImageCount(body);
}

/** The image_url of OpenAI's JSON image reference `{"image_url": "..."}` (file_id references are not served). */
function imageUrlOf(item: unknown, param: string): string {
  const url = typeof item === 'object' && item !== null ? (item as { image_url?: unknown }).image_url : undefined;
  if (typeof url !== 'string' || url === '') {
    throw invalidParameter(`${param}.image_url`, `${param} must be {"image_url": "<https URL, data: URL or base64>"} (file_id references are not served).`);
  }
  return url;
}
