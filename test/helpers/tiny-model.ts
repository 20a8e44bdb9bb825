/**
 * Generates the analytic tiny model once per test process into a temporary models folder.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateTinyModel } from '../../scripts/tiny-model/generate';
import { generatePostprocessStandIns } from '../../scripts/tiny-model/postprocess-models';

let modelsDir: Promise<string> | undefined;

/** A temporary MODELS_DIR holding `tiny-analytic` (generated on first call). */
export function tinyModelsDir(): Promise<string> {
  modelsDir ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'models-'));
    await generateTinyModel(join(dir, 'tiny-analytic'));
    return dir;
  })();
  return modelsDir;
}

let postprocessDir: Promise<string> | undefined;

/**
 * A temporary MODELS_DIR holding `tiny-analytic` and the post-processing test stand-ins
 * (matting/test-matting-gbr.onnx, upscale_models/test-upscale-x4-nearest.onnx), generated on first call; separate
 * from {@link tinyModelsDir} so the listings other suites check are unchanged.
 */
export function tinyModelsDirWithPostprocess(): Promise<string> {
  postprocessDir ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'models-postprocess-'));
    await generateTinyModel(join(dir, 'tiny-analytic'));
    await generatePostprocessStandIns(dir);
    return dir;
  })();
  return postprocessDir;
}
