/**
 * `npm run models`: list shows a checkpoint's detected facts and cache state, convert pre-builds it and, on the CPU
 * provider, the graphs onnxruntime optimizes from it (the list then says cached; converting again does neither), a
 * name that is no checkpoint is a usage error (exit 2) saying where checkpoints go.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasFixture } from '../helpers/checkpoint-fixtures';
import { addFixtureCheckpoint, addFixtureDiffusersFolder, makeModelsDir } from '../helpers/checkpoint-models-dir';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const available = hasFixture('checkpoints') && hasFixture('clip-tokenizer');
let modelsDir: string;

const models = (args: string[]) =>
  run(process.execPath, ['--import', path.join(root, 'node_modules/tsx/dist/esm/index.mjs'), 'scripts/models.ts', ...args], { cwd: root, env: { ...process.env, MODELS_DIR: modelsDir } });

beforeAll(async () => {
  if (!available) return;
  modelsDir = await makeModelsDir('models-cli-');
  await addFixtureCheckpoint(modelsDir, 'checkpoints/sd15-tiny', 'sd15-tiny.safetensors', 'sd1.5/tiny.safetensors');
});
afterAll(async () => {
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

describe.skipIf(!available)('npm run models', () => {
  it('list → convert → list shows the cache state change; an unknown name exits 2', async () => {
    expect((await models(['list'])).stdout).toContain('sd1.5/tiny.safetensors  (checkpoint, Stable Diffusion 1.x, safetensors, F16→float32, epsilon, cache missing)');
    const converted = await models(['convert', 'sd1.5/tiny.safetensors']);
    expect(converted.stdout).toMatch(
      /^converted sd1\.5\/tiny\.safetensors in [\d.]+ s → .*\/\.cache\/[0-9a-f]{32}\noptimized for the CPU execution provider in [\d.]+ s → .*\/\.cache\/[0-9a-f]{32}\/ort-[^/]+-cpu-[0-9a-f]{12}\n$/,
    );
    expect((await models(['list'])).stdout).toContain('cache cached');
    expect((await models(['convert', path.join(modelsDir, 'checkpoints/sd1.5/tiny.safetensors')])).stdout).toMatch(/^sd1\.5\/tiny\.safetensors is already converted: [^\n]+\n$/);
    const wrong = await models(['convert', 'missing.safetensors']).catch((e: { code: number; stderr: string }) => e);
    expect(wrong).toMatchObject({ code: 2 });
    expect((wrong as { stderr: string }).stderr).toMatch(/"missing\.safetensors" is not a checkpoint under .*checkpoints/);
  });

  it.skipIf(!hasFixture('checkpoints-dit'))('converts a FLUX.1 diffusers folder (flow transformer) and lists it cached', async () => {
    await addFixtureDiffusersFolder(modelsDir, 'checkpoints-dit/flux-schnell', 'flux/schnell-tiny');
    const converted = await models(['convert', 'flux/schnell-tiny']);
    expect(converted.stderr).toMatch(/flux\/schnell-tiny: FLUX\.1-schnell, flow, BF16 → float32; hashing and building/);
    expect(converted.stdout).toMatch(/^converted flux\/schnell-tiny in [\d.]+ s → .*\/\.cache\/[0-9a-f]{32}\noptimized for the CPU execution provider/);
    expect((await models(['list'])).stdout).toMatch(/flux\/schnell-tiny[^\n]*FLUX\.1-schnell[^\n]*cached/);
  });
});
