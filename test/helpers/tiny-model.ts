/**
 * Generates the analytic tiny model once per test process into a temporary models folder.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateTinyModel } from '../../scripts/tiny-model/generate';

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
