/**
 * Post-processing models in GET /v1/models: every ONNX file of MODELS_DIR/matting, facerestore and upscale_models
 * is listed with its kind (a face-restoration file with its role), a bad sidecar makes it unusable with the
 * reason, an unloadable file fails its job with 503 naming the field, and the folders are never listed as models
 * themselves.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../gpu-service/src/app';
import { generateTinyModel } from '../../../scripts/tiny-model/generate';
import { buildTestUpscalerGraph, generatePostprocessStandIns } from '../../../scripts/tiny-model/postprocess-models';
import { DataType, OnnxGraph } from '../../../gpu-service/src/graphs/onnx-graph';

const TOKEN = 'postprocess-listing-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let app: FastifyInstance;

beforeAll(async () => {
  const modelsDir = await mkdtemp(join(tmpdir(), 'models-postprocess-listing-'));
  await generateTinyModel(join(modelsDir, 'tiny-analytic'));
  await generatePostprocessStandIns(modelsDir);
  const x2 = buildTestUpscalerGraph(2).toBytes();
  await mkdir(join(modelsDir, 'upscale_models', 'anime'), { recursive: true });
  await writeFile(join(modelsDir, 'upscale_models', 'anime', 'x2.onnx'), x2);
  await writeFile(join(modelsDir, 'upscale_models', 'bad-sidecar.onnx'), x2);
  await writeFile(join(modelsDir, 'upscale_models', 'bad-sidecar.json'), JSON.stringify({ std: [1, 0, 1] }));
  await writeFile(join(modelsDir, 'upscale_models', 'notes.txt'), 'not a model');
  await writeFile(join(modelsDir, 'matting', 'garbage.onnx'), 'not an onnx file');
  // Loads, but breaks the upscaler interface: its output is no integer enlargement of its input.
  const odd = new OnnxGraph('odd_upscaler');
  const input = odd.floatInput('input', [1, 3, 'h', 'w']);
  odd.output('output', odd.node('Resize', [input, '', odd.floatConstant('s', [4], [1, 1, 1.5, 1.5])], { mode: 'nearest' }), DataType.FLOAT, [1, 3, 'oh', 'ow']);
  await writeFile(join(modelsDir, 'upscale_models', 'odd.onnx'), odd.toBytes());
  await mkdir(join(modelsDir, 'facerestore'), { recursive: true });
  await writeFile(join(modelsDir, 'facerestore', 'retinaface_resnet50.onnx'), x2);
  await writeFile(join(modelsDir, 'facerestore', 'GFPGANv1.4.onnx'), x2);
  await writeFile(join(modelsDir, 'facerestore', 'custom.onnx'), x2);
  await writeFile(join(modelsDir, 'facerestore', 'custom.json'), JSON.stringify({ role: 'detector', score_threshold: 0.5 }));
  app = await buildApp({ modelsDir, serviceToken: TOKEN, executionProviders: ['cpu'], intraOpNumThreads: 1, queueMax: 4 });
});
afterAll(async () => app?.close());

describe('GET /v1/models with post-processing models', () => {
  it('lists each ONNX file by kind, id relative to its folder, role for face restoration', async () => {
    const rows = (await app.inject({ method: 'GET', url: '/v1/models', headers: auth })).json().data as Array<Record<string, any>>;
    const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
    expect(Object.keys(byId).sort()).toEqual(
      ['GFPGANv1.4', 'anime/x2', 'bad-sidecar', 'custom', 'garbage', 'odd', 'retinaface_resnet50', 'test-matting-gbr', 'test-upscale-x4-nearest', 'test-face-detector-magenta', 'test-face-restorer-invert', 'tiny-analytic'].sort(),
    );
    expect(byId['test-matting-gbr']).toMatchObject({ kind: 'matting', capabilities: [], loaded: false });
    expect(byId['test-matting-gbr'].size_bytes).toBeGreaterThan(0);
    expect(byId['test-upscale-x4-nearest']).toMatchObject({ kind: 'upscaler' });
    expect(byId['anime/x2']).toMatchObject({ kind: 'upscaler' });
    expect(byId['retinaface_resnet50']).toMatchObject({ kind: 'facerestore', role: 'detector' });
    expect(byId['GFPGANv1.4']).toMatchObject({ kind: 'facerestore', role: 'restorer' });
    expect(byId['custom']).toMatchObject({ kind: 'facerestore', role: 'detector' });
    expect(byId['test-face-detector-magenta']).toMatchObject({ kind: 'facerestore', role: 'detector' });
    expect(byId['test-face-restorer-invert']).toMatchObject({ kind: 'facerestore', role: 'restorer' });
    expect(byId['bad-sidecar'].error).toMatch(/std.*must not be 0/);
    for (const id of ['test-matting-gbr', 'test-upscale-x4-nearest', 'anime/x2', 'custom']) expect(byId[id].error, id).toBeUndefined();
  });

  it('a model file onnxruntime cannot load fails the job with 503 model_unavailable naming the field', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: auth,
      payload: { id: 'pp-garbage', model: 'tiny-analytic', prompt: 'red', width: 64, height: 64, seed: 1, steps: 2, background: 'transparent', matting_model: 'garbage' },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().error).toMatchObject({ code: 'model_unavailable', param: 'matting_model', message: expect.stringContaining('"garbage" cannot be loaded') });
  });

  it('a model that breaks its interface while running fails the job with 503 naming the field and the reason', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: auth,
      payload: { id: 'pp-odd', model: 'tiny-analytic', prompt: 'red', width: 64, height: 64, seed: 1, steps: 2, hires_fix: { target_width: 128, target_height: 128, upscaler: 'model', upscale_model: 'odd' } },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().error).toMatchObject({ code: 'model_unavailable', param: 'hires_fix.upscale_model', message: expect.stringMatching(/"odd" failed: .*integer scale/) });
  });

  it('refuses a job naming a post-processing model as its model', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: { id: 'pp-1', model: 'matting', prompt: 'red', width: 64, height: 64, seed: 1, steps: 2 } });
    expect(res.statusCode).toBe(404);
  });
});
