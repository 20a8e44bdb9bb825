/**
 * Post-processing stages through POST /v1/jobs on the tiny model and the test stand-ins, checked pixel by pixel:
 * - background transparent: every pixel's alpha in the decoded PNG is the stand-in's known function of that
 *   pixel's colour, clamp(g + b − r, 0, 255); the WebP carries the same alpha losslessly; the RGB equals the
 *   opaque job's;
 * - hires fix with the ×4 nearest upscaler model: the target size, and the second pass starting from the upscaled
 *   image (on the tiny model that equals latent-nearest up to 8-bit rounding; Lanczos does not);
 * - receipts and the PNG "parameters" chunk list every stage that ran with its model's SHA-256;
 * - honest refusals: jpeg + transparent, no matting model, unknown models (400 naming the field, listing what is there).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../gpu-service/src/app';
import { readPngText } from '../../../gpu-service/src/images/encode-image';
import { testMattingAlpha, TEST_MATTING_MODEL, TEST_UPSCALER_MODEL } from '../../../scripts/tiny-model/postprocess-models';
import { tinyModelsDir, tinyModelsDirWithPostprocess } from '../../helpers/tiny-model';

const TOKEN = 'postprocess-jobs-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let app: FastifyInstance;
let bare: FastifyInstance;
let modelsDir: string;

beforeAll(async () => {
  modelsDir = await tinyModelsDirWithPostprocess();
  const opts = { serviceToken: TOKEN, executionProviders: ['cpu' as const], intraOpNumThreads: 1, queueMax: 8, upscaleTiles: { tileSize: 24, tileOverlap: 8 } };
  app = await buildApp({ ...opts, modelsDir });
  bare = await buildApp({ ...opts, modelsDir: await tinyModelsDir() });
});
afterAll(async () => {
  await app?.close();
  await bare?.close();
});

const job = (over: Record<string, unknown> = {}) => ({
  id: `pp-${Math.random().toString(36).slice(2)}`,
  model: 'tiny-analytic',
  // Grey with the tiny model's pixel-to-pixel spread: no channel near 0 or 255 (so nothing clips) and alpha
  // = g + b − r around 128 takes many values.
  prompt: 'a grey wall',
  width: 64,
  height: 64,
  seed: 11,
  steps: 6,
  sampler: 'euler',
  cfg_scale: 3,
  ...over,
});

const post = (target: FastifyInstance, body: unknown) => target.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: body as object });
const sha256 = async (rel: string) => createHash('sha256').update(await readFile(join(modelsDir, rel))).digest('hex');
const raw = async (b64: string) => sharp(Buffer.from(b64, 'base64')).raw().toBuffer({ resolveWithObject: true });

describe('background transparent', () => {
  it('PNG: alpha = clamp(g + b − r) of each pixel, RGB unchanged, the matting stage and its hash in receipt and PNG', async () => {
    const opaque = await post(app, job());
    const clear = await post(app, job({ background: 'transparent' }));
    expect(clear.statusCode, clear.body).toBe(200);
    const rgb = await raw(opaque.json().images[0].b64);
    const rgba = await raw(clear.json().images[0].b64);
    expect(rgb.info.channels).toBe(3);
    expect(rgba.info.channels).toBe(4);
    const alphas = new Set<number>();
    for (let p = 0; p < 64 * 64; p++) {
      const [r, g, b] = [rgb.data[p * 3], rgb.data[p * 3 + 1], rgb.data[p * 3 + 2]];
      expect([rgba.data[p * 4], rgba.data[p * 4 + 1], rgba.data[p * 4 + 2]], `rgb of pixel ${p}`).toEqual([r, g, b]);
      expect(rgba.data[p * 4 + 3], `alpha of pixel ${p} (${r}, ${g}, ${b})`).toBe(testMattingAlpha(r, g, b));
      alphas.add(rgba.data[p * 4 + 3]);
    }
    expect(alphas.size).toBeGreaterThan(5);
    const stage = { stage: 'matting', model: TEST_MATTING_MODEL, hash: await sha256(`matting/${TEST_MATTING_MODEL}.onnx`) };
    expect(clear.json().params).toMatchObject({ background: 'transparent', postprocess: [stage] });
    expect(opaque.json().params.postprocess).toBeUndefined();
    const embedded = JSON.parse(readPngText(Buffer.from(clear.json().images[0].b64, 'base64')).parameters);
    expect(embedded.postprocess).toEqual([stage]);
  });

  it('WebP: the same alpha, stored losslessly; matting_model may name the model', async () => {
    const png = await raw((await post(app, job({ background: 'transparent' }))).json().images[0].b64);
    const res = await post(app, job({ background: 'transparent', matting_model: TEST_MATTING_MODEL, output: { format: 'webp', quality: 80 } }));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().images[0].mime_type).toBe('image/webp');
    const webp = await raw(res.json().images[0].b64);
    expect(webp.info.channels).toBe(4);
    for (let p = 0; p < 64 * 64; p++) expect(webp.data[p * 4 + 3], `alpha of pixel ${p}`).toBe(png.data[p * 4 + 3]);
  });

  it('refuses jpeg (400 on background), a missing matting model (400 naming the kind), an unknown matting_model', async () => {
    const jpeg = await post(app, job({ background: 'transparent', output: { format: 'jpeg', quality: 90 } }));
    expect(jpeg.statusCode).toBe(400);
    expect(jpeg.json().error).toMatchObject({ param: 'background', message: expect.stringMatching(/JPEG has no alpha.*png or webp/) });
    const none = await post(bare, job({ background: 'transparent' }));
    expect(none.statusCode).toBe(400);
    expect(none.json().error).toMatchObject({ param: 'background', message: expect.stringMatching(/kind "matting".*MODELS_DIR\/matting/) });
    const unknown = await post(app, job({ background: 'transparent', matting_model: 'rmbg-2.0' }));
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error).toMatchObject({ param: 'matting_model', message: expect.stringContaining(`Available: ${TEST_MATTING_MODEL}`) });
    const stray = await post(app, job({ matting_model: TEST_MATTING_MODEL }));
    expect(stray.statusCode).toBe(400);
    expect(stray.json().error.param).toBe('matting_model');
  });
});

describe('hires fix with an upscaler model', () => {
  const hires = (upscaler: string, extra: Record<string, unknown> = {}) =>
    job({ hires_fix: { target_width: 256, target_height: 256, strength: 0.05, upscaler, ...extra } });

  it('upscales the decoded first pass ×4 (nearest) and re-encodes it for the second pass; the stage and hash are in the receipt', async () => {
    const res = await post(app, hires('model', { upscale_model: TEST_UPSCALER_MODEL }));
    expect(res.statusCode, res.body).toBe(200);
    const out = await raw(res.json().images[0].b64);
    expect([out.info.width, out.info.height]).toEqual([256, 256]);
    // On the tiny model, encode(×4 nearest(decode(z))) is z's visible part replicated 4×4 (8×8 block means of flat
    // 32×32 blocks), which is what latent-nearest does to z; the invisible latent direction never reaches the pixels.
    // So both hires runs give the same image up to the 8-bit rounding of the decoded first pass; Lanczos does not.
    const latent = await raw((await post(app, hires('latent-nearest'))).json().images[0].b64);
    const lanczos = await raw((await post(app, hires('lanczos'))).json().images[0].b64);
    const worst = (a: Buffer, b: Buffer) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    expect(worst(out.data, latent.data)).toBeLessThanOrEqual(1);
    expect(worst(lanczos.data, latent.data)).toBeGreaterThan(1);
    const stage = { stage: 'hires_upscale', model: TEST_UPSCALER_MODEL, hash: await sha256(`upscale_models/${TEST_UPSCALER_MODEL}.onnx`) };
    expect(res.json().params).toMatchObject({ hires_fix: { upscaler: 'model', upscale_model: TEST_UPSCALER_MODEL }, postprocess: [stage] });
    expect(JSON.parse(readPngText(Buffer.from(res.json().images[0].b64, 'base64')).parameters).postprocess).toEqual([stage]);
  });

  it('records both stages, in order, when a hires upscale and matting ran', async () => {
    const res = await post(app, { ...hires('model', { upscale_model: TEST_UPSCALER_MODEL }), background: 'transparent' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().params.postprocess.map((s: { stage: string }) => s.stage)).toEqual(['hires_upscale', 'matting']);
  });

  it('refuses an unknown or missing upscale_model (400 listing the available ones); latent upscalers still work', async () => {
    const unknown = await post(app, hires('model', { upscale_model: 'RealESRGAN_x4plus' }));
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error).toMatchObject({ param: 'hires_fix.upscale_model', message: expect.stringContaining(`Available: ${TEST_UPSCALER_MODEL}`) });
    const missing = await post(app, hires('model'));
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.param).toBe('hires_fix.upscale_model');
    const none = await post(bare, hires('model', { upscale_model: TEST_UPSCALER_MODEL }));
    expect(none.statusCode).toBe(400);
    expect(none.json().error.message).toMatch(/Available: none/);
    const latent = await post(app, hires('latent'));
    expect(latent.statusCode, latent.body).toBe(200);
    expect(latent.json().params.postprocess).toBeUndefined();
  });
});
