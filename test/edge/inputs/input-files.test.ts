import { createExecutionContext } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorBody } from '@image-api/shared/errors';
import { buildApp } from '../../../edge/src/app';
import { ModelCatalog } from '../../../edge/src/gpu/model-catalog';
import { encodeBase64 } from '../../../edge/src/lib/base64';
import { seedApiKey } from '../helpers/api-keys';
import { installFakeGpuService, type FakeGpuService } from '../helpers/fake-gpu-service';
import { solidPng } from '../helpers/png';
import { alphaMaskPng, concat, jpegSegments, pngChunk } from './helpers/png-encode';

/**
 * Issue 10 items 6 and 7 on every route that takes images: a file that is not whole is a 400 at submit
 * naming the public field (never a task that fails later), the GPU service's errors name the public field
 * too, and what is stored in R2 (and sent to the GPU service) has no EXIF/GPS/XMP/text metadata.
 */

const KEY = 'sk-input-files';
const ORIGIN = 'https://edge.test';
const W = 64;
const H = 72;

const json = (path: string, body: unknown) =>
  exports.default.fetch(`${ORIGIN}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

function form(path: string, files: Record<string, Uint8Array>, fields: Record<string, string> = {}): Promise<Response> {
  const body = new FormData();
  for (const [name, bytes] of Object.entries(files)) body.append(name, new File([bytes], `${name}.bin`, { type: 'application/octet-stream' }));
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  return exports.default.fetch(`${ORIGIN}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body });
}

const ASYNC_REQUEST = { model_name: 'tiny-analytic', prompt: 'x', width: 256, height: 256, image_num: 1, steps: 6, guidance_scale: 7.5, sampler_name: 'Euler a', seed: 1 };

/** The async API with a Queue producer that records what it was sent. */
function asyncSubmit(kind: 'img2img' | 'inpainting', request: Record<string, unknown>) {
  const sent: unknown[] = [];
  const testEnv = { ...env, ASYNC_TASKS: { send: async (message: unknown) => void sent.push(message) } } as unknown as typeof env;
  const response = buildApp({ catalog: new ModelCatalog() }).fetch(
    new Request(`${ORIGIN}/v3/async/${kind}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ extra: {}, request: { ...ASYNC_REQUEST, ...request } }),
    }),
    testEnv,
    createExecutionContext(),
  );
  return { response: Promise.resolve(response), sent };
}

async function expectError(response: Response | Promise<Response>, status: number, param: string, code: string): Promise<ErrorBody> {
  const res = await response;
  const body = (await res.json()) as ErrorBody;
  expect({ status: res.status, param: body.error.param, code: body.error.code }, body.error.message).toEqual({ status, param, code });
  return body;
}

/** The R2 objects of a task by file name. */
async function taskObjects(taskId: string): Promise<Map<string, Uint8Array>> {
  const listing = await env.IMAGES.list();
  const objects = new Map<string, Uint8Array>();
  for (const { key } of listing.objects.filter((o) => o.key.includes(`/${taskId}/`))) {
    objects.set(key.split('/').pop()!, new Uint8Array(await (await env.IMAGES.get(key))!.arrayBuffer()));
  }
  return objects;
}

let gpu: FakeGpuService;
let png: Uint8Array;
let truncated: Uint8Array;
beforeAll(async () => {
  await seedApiKey(env.API_KEYS, { key: KEY, name: 'input-files', tenant: 'tenant-files' });
  png = await solidPng(256, 256, [10, 20, 30]);
  // The header (and so the pixel-size check) is intact; the image data is cut off, as by a broken upload.
  truncated = png.subarray(0, png.length - 20);
});
beforeEach(() => {
  gpu = installFakeGpuService(env.GPU_SERVICE_URL, env.GPU_SERVICE_TOKEN);
});
afterEach(() => gpu.restore());

describe('a truncated image is a 400 at submit naming the public field, on every route', () => {
  afterEach(() => expect(gpu.jobs).toHaveLength(0));

  it('/v3/async/img2img and /v3/async/inpainting: nothing is queued', async () => {
    const image = asyncSubmit('img2img', { image_base64: encodeBase64(truncated) });
    const body = await expectError(image.response, 400, 'request.image_base64', 'invalid_image');
    expect(body.error.message).toMatch(/truncated/);
    expect(image.sent).toHaveLength(0);
    const mask = asyncSubmit('inpainting', { image_base64: encodeBase64(png), mask_image_base64: encodeBase64(truncated) });
    await expectError(mask.response, 400, 'request.mask_image_base64', 'invalid_image');
    expect(mask.sent).toHaveLength(0);
  });

  it('/v1/images/edits: image, mask, and the JSON images[0].image_url', async () => {
    await expectError(form('/v1/images/edits', { image: truncated }, { prompt: 'x' }), 400, 'image', 'invalid_image');
    await expectError(form('/v1/images/edits', { image: png, mask: truncated }, { prompt: 'x' }), 400, 'mask', 'invalid_image');
    const dataUrl = `data:image/png;base64,${encodeBase64(truncated)}`;
    await expectError(json('/v1/images/edits', { prompt: 'x', images: [{ image_url: dataUrl }] }), 400, 'images[0].image_url', 'invalid_image');
  });

  it('/v1/images/variations, /v1/img2img and /v1/images/generations', async () => {
    await expectError(form('/v1/images/variations', { image: truncated }), 400, 'image', 'invalid_image');
    await expectError(json('/v1/img2img', { image_url: `data:image/png;base64,${encodeBase64(truncated)}` }), 400, 'image_url', 'invalid_image');
    await expectError(json('/v1/images/generations', { prompt: 'x', image: encodeBase64(truncated) }), 400, 'image', 'invalid_image');
  });
});

describe("the GPU service's refusal of an input names the public field, not the job's init_image", () => {
  const refusal = {
    error: {
      type: 'invalid_request_error',
      code: 'invalid_request',
      message: 'init_image is not a decodable PNG, JPEG or WebP image within 16777216 pixels (vipspng: IDAT: invalid distance too far back)',
      param: 'init_image',
    },
  };
  beforeEach(() => {
    gpu.behaviour = { kind: 'status', status: 400, body: refusal };
  });

  it.each([
    ['/v1/images/edits', () => form('/v1/images/edits', { image: png }, { prompt: 'x', response_format: 'b64_json' }), 'image'],
    ['/v1/images/variations', () => form('/v1/images/variations', { image: png }, { response_format: 'b64_json' }), 'image'],
    ['/v1/img2img', () => json('/v1/img2img', { image_url: encodeBase64(png) }), 'image_url'],
    ['/v1/images/generations', () => json('/v1/images/generations', { prompt: 'x', image: encodeBase64(png), response_format: 'b64_json' }), 'image'],
  ])('%s', async (_route, send, param) => {
    const response = await send();
    const taskId = response.headers.get('x-task-id')!;
    await expectError(response, 400, param, 'invalid_request');
    // The task's recorded failure names it too.
    const task = (await (await exports.default.fetch(`${ORIGIN}/v1/tasks/${taskId}`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as ErrorBody;
    expect(task.error.param).toBe(param);
  });
});

/** A PNG with text, EXIF and time chunks around the image data (what cameras and editors write). */
function pngWithMetadata(plain: Uint8Array): Uint8Array {
  // plain = signature (8) + IHDR (25) + IDAT… + IEND (12).
  const head = plain.subarray(0, 33);
  const body = plain.subarray(33, plain.length - 12);
  const tail = plain.subarray(plain.length - 12);
  const text = new TextEncoder();
  const exif = concat([text.encode('MM\0*'), new Uint8Array([0, 0, 0, 8, 0, 0]), text.encode('GPS 48.8566N 2.3522E')]);
  return concat([
    head,
    pngChunk('tEXt', text.encode('Author\0Jane Secret')),
    pngChunk('eXIf', exif),
    pngChunk('iTXt', text.encode('XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>home</x:xmpmeta>')),
    body,
    pngChunk('tIME', new Uint8Array([7, 234, 12, 7, 5, 30, 0])),
    tail,
  ]);
}

/** A JPEG with an EXIF APP1 (GPS), an XMP APP1, an IPTC APP13 and a comment; and the same file without them. */
function jpegWithMetadata(): { dirty: Uint8Array; clean: Uint8Array } {
  const s = jpegSegments(W, H);
  const segment = (marker: number, payload: string) => {
    const bytes = new TextEncoder().encode(payload);
    return [0xff, marker, (bytes.length + 2) >> 8, (bytes.length + 2) & 0xff, ...bytes];
  };
  const exif = segment(0xe1, 'Exif\0\0MM\0*\0\0\0\x08GPSLatitude 48.8566 N GPSLongitude 2.3522 E');
  const xmp = segment(0xe1, 'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Jane Secret</x:xmpmeta>');
  const iptc = segment(0xed, 'Photoshop 3.0\x008BIM home address');
  const comment = segment(0xfe, 'shot at home');
  return {
    dirty: new Uint8Array([...s.soi, ...s.app0, ...exif, ...xmp, ...iptc, ...s.sof, ...comment, ...s.scan, ...s.eoi, ...exif]),
    clean: new Uint8Array([...s.soi, ...s.app0, ...s.sof, ...s.scan, ...s.eoi]),
  };
}

/** A WebP (VP8X with the EXIF and XMP flags, VP8L, EXIF, XMP) and the same file without its metadata. */
function webpWithMetadata(): { dirty: Uint8Array; clean: Uint8Array } {
  const chunk = (name: string, payload: Uint8Array) => {
    const out = new Uint8Array(8 + payload.length + (payload.length & 1));
    out.set(new TextEncoder().encode(name));
    new DataView(out.buffer).setUint32(4, payload.length, true);
    out.set(payload, 8);
    return out;
  };
  const vp8x = (flags: number) => {
    const payload = new Uint8Array(10);
    payload[0] = flags;
    payload.set([(W - 1) & 0xff, (W - 1) >> 8, 0, (H - 1) & 0xff, (H - 1) >> 8, 0], 4);
    return chunk('VP8X', payload);
  };
  // VP8L: signature 0x2f, then 14-bit width-1 and height-1 (the bitstream itself is not needed here).
  const bits = (W - 1) | ((H - 1) << 14);
  const vp8l = chunk('VP8L', new Uint8Array([0x2f, bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff, (bits >> 24) & 0xff, 0, 0]));
  const riff = (chunks: Uint8Array[]) => {
    const payload = concat([new TextEncoder().encode('WEBP'), ...chunks]);
    const out = concat([new TextEncoder().encode('RIFF'), new Uint8Array(4), payload]);
    new DataView(out.buffer).setUint32(4, payload.length, true);
    return out;
  };
  const text = new TextEncoder();
  return {
    dirty: riff([vp8x(0x08 | 0x04), vp8l, chunk('EXIF', text.encode('MM\0*GPS 48.8566N')), chunk('XMP ', text.encode('<x:xmpmeta>Jane Secret</x:xmpmeta>'))]),
    clean: riff([vp8x(0), vp8l]),
  };
}

describe('input images are stored (and sent to the GPU service) without their metadata', () => {
  it('/v1/images/edits: a JPEG loses EXIF (GPS), XMP, IPTC, its comment and what follows EOI; a PNG mask its text/EXIF/time chunks', async () => {
    const jpeg = jpegWithMetadata();
    const mask = await alphaMaskPng(W, H, (x, y) => x < 8 && y < 8);
    const response = await form('/v1/images/edits', { image: jpeg.dirty, mask: pngWithMetadata(mask) }, { prompt: 'x', response_format: 'b64_json' });
    expect(response.status, await response.clone().text()).toBe(200);
    const stored = await taskObjects(response.headers.get('x-task-id')!);
    expect(stored.get('input-0.jpg')).toEqual(jpeg.clean);
    expect(stored.get('input-1.png')).toEqual(mask);
    expect(gpu.jobs[0].init_image).toBe(encodeBase64(jpeg.clean));
    expect(gpu.jobs[0].mask).toBe(encodeBase64(mask));
  });

  it('/v1/img2img: a WebP loses its EXIF and XMP chunks and their VP8X flags', async () => {
    const webp = webpWithMetadata();
    const response = await json('/v1/img2img', { image_url: `data:image/webp;base64,${encodeBase64(webp.dirty)}`, width: W, height: H });
    expect(response.status, await response.clone().text()).toBe(200);
    const stored = await taskObjects(response.headers.get('x-task-id')!);
    expect(stored.get('input-0.webp')).toEqual(webp.clean);
    expect(gpu.jobs[0].init_image).toBe(encodeBase64(webp.clean));
  });

  it('/v3/async/img2img and /v1/images/generations: a PNG loses its text, EXIF and time chunks', async () => {
    const submitted = asyncSubmit('img2img', { image_base64: encodeBase64(pngWithMetadata(png)) });
    const response = await submitted.response;
    expect(response.status, await response.clone().text()).toBe(200);
    expect((await taskObjects(response.headers.get('x-task-id')!)).get('input-0.png')).toEqual(png);

    const generation = await json('/v1/images/generations', { prompt: 'x', image: encodeBase64(pngWithMetadata(png)), response_format: 'b64_json' });
    expect(generation.status, await generation.clone().text()).toBe(200);
    expect((await taskObjects(generation.headers.get('x-task-id')!)).get('input-0.png')).toEqual(png);
  });
});
