/**
 * End to end: image inputs against the real stack (`npm start`'s GPU service with the tiny model and
 * wrangler dev): the official `openai` package's images.edit (with and without a mask) and
 * images.createVariation, /v1/img2img via fetch, /v1/images/generations with `image`, and the
 * input rules (masks, SSRF to the local GPU service, decompression bombs) on the real Worker.
 */
import OpenAI, { toFile } from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dominant, meanColour } from '../helpers/image-stats';
import { startStack, type Stack } from '../helpers/stack';

let stack: Stack;
let client: OpenAI;

const SIZE = 256;
/** The repaint square of the mask: x, y in [64, 192). */
const inSquare = (x: number, y: number) => x >= 64 && x < 192 && y >= 64 && y < 192;
const BLUE: [number, number, number] = [40, 60, 200];

/** Raw RGB of an encoded image. */
async function rgb(bytes: Uint8Array | Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Mean colour of the pixels where `where(x, y)`. */
function meanWhere(image: { data: Buffer; width: number; height: number }, where: (x: number, y: number) => boolean): { r: number; g: number; b: number } {
  let r = 0;
  let g = 0;
  let b = 0;
  let n = 0;
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      if (!where(x, y)) continue;
      const o = (y * image.width + x) * 3;
      r += image.data[o];
      g += image.data[o + 1];
      b += image.data[o + 2];
      n += 1;
    }
  }
  return { r: r / n, g: g / n, b: b / n };
}

let source: Buffer;
let mask: Buffer;

beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.baseUrl}/v1` });
  source = await sharp({ create: { width: SIZE, height: SIZE, channels: 3, background: { r: BLUE[0], g: BLUE[1], b: BLUE[2] } } }).png().toBuffer();
  const alpha = Buffer.alloc(SIZE * SIZE * 4);
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) alpha[(y * SIZE + x) * 4 + 3] = inSquare(x, y) ? 0 : 255;
  mask = await sharp(alpha, { raw: { width: SIZE, height: SIZE, channels: 4 } }).png().toBuffer();
}, 180_000);
afterAll(async () => stack?.stop());

describe('images.edit through the openai SDK', () => {
  it('with a mask: pixels outside it are unchanged, the square inside moves toward the prompt colour', async () => {
    const res = await client.images.edit({
      image: await toFile(source, 'source.png', { type: 'image/png' }),
      mask: await toFile(mask, 'mask.png', { type: 'image/png' }),
      prompt: 'a red apple',
      response_format: 'b64_json',
      seed: 11,
    } as never);
    expect(res.data).toHaveLength(1);
    const out = await rgb(Buffer.from(res.data![0].b64_json!, 'base64'));
    expect([out.width, out.height]).toEqual([SIZE, SIZE]);
    const before = await rgb(source);
    let changedOutside = 0;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        if (inSquare(x, y)) continue;
        const o = (y * SIZE + x) * 3;
        if (out.data[o] !== before.data[o] || out.data[o + 1] !== before.data[o + 1] || out.data[o + 2] !== before.data[o + 2]) changedOutside += 1;
      }
    }
    expect(changedOutside).toBe(0);
    const inside = meanWhere(out, inSquare);
    // The tiny model has no locality (its wide spread is the image's mean colour, scripts/tiny-model/README.md),
    // so a 4-channel repaint of a quarter of the image moves toward red but keeps much of the image's blue.
    expect(inside.r, JSON.stringify(inside)).toBeGreaterThan(BLUE[0] + 20);
    expect(inside.b, JSON.stringify(inside)).toBeLessThan(BLUE[2] - 15);
  });

  it('without a mask: the whole image is repainted toward the prompt colour', async () => {
    const res = await client.images.edit({
      image: await toFile(source, 'source.png', { type: 'image/png' }),
      prompt: 'green grass',
      response_format: 'b64_json',
      seed: 2,
    } as never);
    const png = Buffer.from(res.data![0].b64_json!, 'base64');
    const mean = await meanColour(png);
    expect(mean.width).toBe(SIZE);
    expect(mean.g).toBeGreaterThan(BLUE[1] + 60);
  });

  it('a mask that covers nothing is a 400 naming mask, never a whole-image repaint', async () => {
    const opaque = await sharp({ create: { width: SIZE, height: SIZE, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 1 } } }).png().toBuffer();
    const error = await client.images
      .edit({
        image: await toFile(source, 'source.png', { type: 'image/png' }),
        mask: await toFile(opaque, 'mask.png', { type: 'image/png' }),
        prompt: 'a red apple',
      } as never)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('mask');
  });

  it('a mask of another size is a 400 naming mask', async () => {
    const small = await sharp(mask).resize(128, 128).png().toBuffer();
    const error = await client.images
      .edit({ image: await toFile(source, 'source.png', { type: 'image/png' }), mask: await toFile(small, 'mask.png', { type: 'image/png' }), prompt: 'x' } as never)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as Error).message).toContain('mask must be the same size as image');
  });
});

describe('images.createVariation through the openai SDK', () => {
  it('returns variations of the source size (signed links serving PNGs); a lower strength stays closer to the source', async () => {
    const vary = async (strength?: number) =>
      client.images.createVariation({
        image: await toFile(source, 'source.png', { type: 'image/png' }),
        n: 2,
        seed: 1,
        ...(strength === undefined ? {} : { strength }),
      } as never);
    const res = await vary();
    expect(res.data).toHaveLength(2);
    const file = await fetch(res.data![0].url!);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('image/png');
    const standard = await meanColour(Buffer.from(await file.arrayBuffer()));
    expect([standard.width, standard.height]).toEqual([SIZE, SIZE]);
    // A variation keeps the source's colour (the tiny model's wide mean-colour spread), the more so at a
    // lower strength; the empty prompt pulls toward mid grey.
    expect(dominant(standard)).toBe('blue');
    const light = await meanColour(Buffer.from(await (await fetch((await vary(0.1)).data![0].url!)).arrayBuffer()));
    expect(light.b - light.r).toBeGreaterThan(standard.b - standard.r + 5);
  });

  it('a variation of a red image is red, not grey', async () => {
    const red = await sharp({ create: { width: SIZE, height: SIZE, channels: 3, background: { r: 220, g: 30, b: 30 } } }).png().toBuffer();
    const res = await client.images.createVariation({ image: await toFile(red, 'red.png', { type: 'image/png' }), response_format: 'b64_json', seed: 4 } as never);
    const mean = await meanColour(Buffer.from(res.data![0].b64_json!, 'base64'));
    expect(mean.r).toBeGreaterThan(Math.max(mean.g, mean.b) + 60);
  });
});

describe('/v1/img2img (ComfyUI names) via fetch', () => {
  const post = (body: unknown) =>
    fetch(`${stack.baseUrl}/v1/img2img`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('a data: URL source and "a red apple": the parameters used come back with a red image', async () => {
    const res = await post({
      image_url: `data:image/png;base64,${source.toString('base64')}`,
      prompt: 'a red apple',
      width: 256,
      height: 256,
      denoise_strength: 0.9,
      steps: 8,
      response_format: 'b64_json',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-task-id')).toBeTruthy();
    const body = await res.json();
    expect(body.parameters).toMatchObject({ mode: 'img2img', seed: 0, steps: 8, sampler_name: 'euler', scheduler: 'normal', cfg: 8, denoise_strength: 0.9 });
    expect(body.receipt).toMatchObject({ mode: 'img2img', seed: 0, steps: 8, sampler: 'euler' });
    const mean = await meanColour(Buffer.from(body.data[0].b64_json, 'base64'));
    expect(mean.r).toBeGreaterThan(mean.b);
  });

  it('"a red apple" over a blue image: mostly blue at denoise 0.05, visibly mixed at 0.5, red at 1.0 (defaults: cfg 8, 20 steps)', async () => {
    const colourAt = async (denoise_strength: number) => {
      const res = await post({ image_url: `data:image/png;base64,${source.toString('base64')}`, prompt: 'a red apple', width: 256, height: 256, denoise_strength, response_format: 'b64_json' });
      expect(res.status).toBe(200);
      return meanColour(Buffer.from((await res.json()).data[0].b64_json, 'base64'));
    };
    const low = await colourAt(0.05);
    const half = await colourAt(0.5);
    const full = await colourAt(1);
    // 0.05: the source (40, 60, 200) barely moves.
    expect(low.b).toBeGreaterThan(BLUE[2] - 25);
    expect(low.r).toBeLessThan(BLUE[0] + 30);
    // 0.5: both the source's blue and the prompt's red are clearly there.
    expect(half.r).toBeGreaterThan(BLUE[0] + 60);
    expect(half.b).toBeGreaterThan(40);
    expect(half.b).toBeLessThan(BLUE[2] - 60);
    // 1.0: the prompt alone.
    expect(full.r).toBeGreaterThan(full.b + 150);
  });

  it('the same request twice gives the same pixels (seed 0 is a real seed)', async () => {
    const request = { image_url: `data:image/png;base64,${source.toString('base64')}`, width: 256, height: 256, steps: 4, response_format: 'b64_json' };
    const [a, b] = await Promise.all([post(request), post(request)]);
    const [ja, jb] = [await a.json(), await b.json()];
    expect(ja.data[0].b64_json).toBe(jb.data[0].b64_json);
  });

  it('image_url pointing at the local GPU service (SSRF) is refused', async () => {
    for (const url of [`http://127.0.0.1:${new URL(stack.gpuUrl).port}/healthz`, `https://127.0.0.1:${new URL(stack.gpuUrl).port}/v1/models`, 'https://localhost/x.png']) {
      const res = await post({ image_url: url });
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body.error).toMatchObject({ param: 'image_url', code: 'invalid_image_url' });
    }
  });
});

describe('input rules on the real Worker', () => {
  it('a decompression bomb (PNG header claiming 30000x30000) is refused before decoding', async () => {
    const bomb = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toBuffer();
    bomb.writeUInt32BE(30_000, 16);
    bomb.writeUInt32BE(30_000, 20);
    const error = await client.images.edit({ image: await toFile(bomb, 'bomb.png', { type: 'image/png' }), prompt: 'x' } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('image_too_large');
  });

  it('generations with `image` (base64) is img2img of that image', async () => {
    const res = await client.images.generate({ prompt: 'a red apple', image: source.toString('base64'), response_format: 'b64_json', seed: 4 } as never);
    const mean = await meanColour(Buffer.from(res.data![0].b64_json!, 'base64'));
    expect(mean.width).toBe(SIZE);
    expect(mean.r).toBeGreaterThan(BLUE[0] + 40);
  });
});
