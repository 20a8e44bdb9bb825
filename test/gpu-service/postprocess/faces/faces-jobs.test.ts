/**
 * restore_faces through POST /v1/jobs on the tiny model and the face stand-ins (scripts/tiny-model/face-models.ts):
 * the tiny model's images hold no magenta square, so the detector finds no face and every pixel stays as the plain
 * job's, while the receipt and the PNG "parameters" chunk list face_detect and face_restore with their model
 * hashes and 0 faces; refusals are 400s naming the field and the missing kind. A found face through a whole job:
 * an inpainting job keeps every pixel outside its mask exactly, so a magenta square in its source image reaches
 * the face stage unchanged. (The feather's pixels are checked in faces-units.test.ts on the same stand-ins.)
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../../gpu-service/src/app';
import { readPngText } from '../../../../gpu-service/src/images/encode-image';
import { TEST_FACE_DETECTOR_MODEL, TEST_FACE_RESTORER_MODEL } from '../../../../scripts/tiny-model/face-models';
import { tinyModelsDir, tinyModelsDirWithPostprocess } from '../../../helpers/tiny-model';

const TOKEN = 'faces-jobs-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
let app: FastifyInstance;
let bare: FastifyInstance;
let modelsDir: string;

beforeAll(async () => {
  modelsDir = await tinyModelsDirWithPostprocess();
  const opts = { serviceToken: TOKEN, executionProviders: ['cpu' as const], intraOpNumThreads: 1, queueMax: 8 };
  app = await buildApp({ ...opts, modelsDir });
  bare = await buildApp({ ...opts, modelsDir: await tinyModelsDir() });
});
afterAll(async () => {
  await app?.close();
  await bare?.close();
});

const job = (over: Record<string, unknown> = {}) => ({
  id: `faces-${Math.random().toString(36).slice(2)}`,
  model: 'tiny-analytic',
  prompt: 'a grey wall',
  width: 64,
  height: 64,
  seed: 5,
  steps: 4,
  sampler: 'euler',
  cfg_scale: 3,
  ...over,
});
const post = (target: FastifyInstance, body: unknown) => target.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: body as object });
const sha256 = async (rel: string) => createHash('sha256').update(await readFile(join(modelsDir, rel))).digest('hex');
const raw = async (b64: string) => (await sharp(Buffer.from(b64, 'base64')).raw().toBuffer()).toString('hex');

describe('restore_faces on the GPU service', () => {
  it('no face: the pixels of the plain job, and the receipt + PNG list both face stages with hashes and 0 faces', async () => {
    const plain = await post(app, job());
    const faces = await post(app, job({ restore_faces: true, face_restore_fidelity: 0.25 }));
    expect(faces.statusCode, faces.body).toBe(200);
    expect(await raw(faces.json().images[0].b64)).toBe(await raw(plain.json().images[0].b64));
    const stages = [
      { stage: 'face_detect', model: TEST_FACE_DETECTOR_MODEL, hash: await sha256(`facerestore/${TEST_FACE_DETECTOR_MODEL}.onnx`) },
      { stage: 'face_restore', model: TEST_FACE_RESTORER_MODEL, hash: await sha256(`facerestore/${TEST_FACE_RESTORER_MODEL}.onnx`), faces: [0], fidelity: 0.25 },
    ];
    expect(faces.json().params.postprocess).toEqual(stages);
    expect(JSON.parse(readPngText(Buffer.from(faces.json().images[0].b64, 'base64')).parameters).postprocess).toEqual(stages);
  });

  it('the default fidelity 0.5 is recorded; an explicit face_restore_model is used', async () => {
    const res = await post(app, job({ restore_faces: true, face_restore_model: TEST_FACE_RESTORER_MODEL }));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().params.postprocess[1]).toMatchObject({ stage: 'face_restore', model: TEST_FACE_RESTORER_MODEL, fidelity: 0.5, faces: [0] });
  });

  it('a face found in a job: the square is restored (fidelity 0 inverts it), pixels away from it are the plain job\'s, the receipt counts 1 face', async () => {
    // 64² grey source with a 24² magenta square at (8, 8); the job repaints only the bottom-right 12² corner.
    const src = Buffer.alloc(64 * 64 * 3, 128);
    for (let y = 8; y < 32; y++) for (let x = 8; x < 32; x++) src.set([255, 0, 255], (y * 64 + x) * 3);
    const mask = Buffer.alloc(64 * 64 * 3, 0);
    for (let y = 52; y < 64; y++) for (let x = 52; x < 64; x++) mask.set([255, 255, 255], (y * 64 + x) * 3);
    const png = async (b: Buffer) => (await sharp(b, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer()).toString('base64');
    const inpaint = { mode: 'inpaint', init_image: await png(src), mask: await png(mask), mask_mode: 'white', strength: 1 };
    const plain = await post(app, job(inpaint));
    const faces = await post(app, job({ ...inpaint, restore_faces: true, face_restore_fidelity: 0 }));
    expect(plain.statusCode, plain.body).toBe(200);
    expect(faces.statusCode, faces.body).toBe(200);
    const pixels = async (res: typeof plain) => sharp(Buffer.from(res.json().images[0].b64, 'base64')).removeAlpha().raw().toBuffer();
    const [before, after] = [await pixels(plain), await pixels(faces)];
    const at = (b: Buffer, x: number, y: number) => [...b.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3)];
    // The plain job kept the square (outside the mask) exactly.
    expect(at(before, 20, 20)).toEqual([255, 0, 255]);
    // Inside the square, away from its feathered rim, the restorer's inverse: magenta → green (±1 for rounding).
    for (const [x, y] of [[16, 16], [20, 20], [24, 22]]) {
      const [r, g, b] = at(after, x, y);
      expect(Math.max(r, Math.abs(255 - g), b), `pixel (${x}, ${y}) = ${[r, g, b]}`).toBeLessThanOrEqual(1);
    }
    // Far from the face (the repainted corner included), every pixel is the plain job's.
    for (const [x, y] of [[60, 60], [56, 8], [8, 56], [60, 2]]) expect(at(after, x, y), `pixel (${x}, ${y})`).toEqual(at(before, x, y));
    expect(faces.json().params.postprocess[1]).toMatchObject({ stage: 'face_restore', faces: [1], fidelity: 0 });
  });

  it('400s name the field and the missing kind', async () => {
    const none = await post(bare, job({ restore_faces: true }));
    expect(none.statusCode).toBe(400);
    expect(none.json().error.message).toMatch(/^restore_faces: .*kind "facerestore" with role detector/);
    const unknown = await post(app, job({ restore_faces: true, face_restore_model: 'nope' }));
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.message).toContain(`face_restore_model: no face restoration model named "nope"`);
    expect(unknown.json().error.message).toContain(TEST_FACE_RESTORER_MODEL);
    const detector = await post(app, job({ restore_faces: true, face_restore_model: TEST_FACE_DETECTOR_MODEL }));
    expect(detector.statusCode).toBe(400);
    expect(detector.json().error.message).toMatch(/face_restore_model: .* is a face detector/);
    const alone = await post(app, job({ face_restore_fidelity: 0.3 }));
    expect(alone.statusCode).toBe(400);
    expect(alone.json().error.message).toMatch(/^face_restore_fidelity: only used with restore_faces true/);
    expect((await post(app, job({ restore_faces: true, face_restore_fidelity: 1.5 }))).statusCode).toBe(400);
  });
});
