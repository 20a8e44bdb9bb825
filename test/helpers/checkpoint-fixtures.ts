/**
 * Access to ../shared/fixtures/checkpoints* (tiny random-weight checkpoints with upstream reference outputs):
 * the case lists, the reference tensors, and the fixtures' pass rules: `max|actual − expected| ≤ tolerance.rel ·
 * max|expected|` per output tensor (checkpoints/), or `max|actual − expected| ≤ tolerance.atol` (checkpoints-xl/,
 * checkpoints-dit/).
 * Suites use `describe.skipIf(!hasCheckpointFixtures)` and print why when the folder is absent.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { openSafetensors } from '../../gpu-service/src/weights/safetensors';
import type { TensorFile } from '../../gpu-service/src/weights/tensor-file';

/** ../shared/fixtures beside the repository. */
export const FIXTURES_ROOT = path.resolve(__dirname, '../../..', 'shared', 'fixtures');

/** A family folder, e.g. `checkpoints/sd15-tiny`, `checkpoints-xl/sdxl-base`. */
export function fixtureDir(rel: string): string {
  return path.join(FIXTURES_ROOT, rel);
}

/** Whether the fixtures folder `rel` exists; warns once with the reason when it does not. */
export function hasFixture(rel: string): boolean {
  const ok = existsSync(fixtureDir(rel));
  if (!ok) console.warn(`skipping checkpoint fixture tests: ${fixtureDir(rel)} is absent (the ../shared folder beside the repo)`);
  return ok;
}

/** One case of a family's cases.json (only the fields tests use are typed). */
export interface FixtureCase {
  id: string;
  component: string;
  model_files: string[];
  inputs: Record<string, string>;
  outputs: Record<string, string>;
  /** `rel` (checkpoints/) or `atol` with `per_output` atols (checkpoints-xl/, checkpoints-dit/). */
  tolerance: { rel: number; atol?: number; per_output?: Record<string, { atol?: number }> };
  [field: string]: unknown;
}

/** A family's cases.json plus its reference tensors. */
export interface FixtureFamily {
  dir: string;
  json: { cases: FixtureCase[]; configs?: Record<string, unknown>; [field: string]: unknown };
  reference: TensorFile;
  /** The case with this id. @throws when absent */
  case(id: string): FixtureCase;
  /** A reference tensor by name, with its shape. */
  tensor(name: string): Promise<{ data: Float32Array; shape: number[] }>;
}

/**
 * Open a family folder (`cases.json` beside `reference.safetensors`, or `casesFile` / `referenceFile` when a
 * collection keeps them one level up, as checkpoints-xl does).
 */
export async function openFixtureFamily(rel: string, opts: { casesFile?: string; referenceFile?: string } = {}): Promise<FixtureFamily> {
  const dir = fixtureDir(rel);
  const json = JSON.parse(readFileSync(path.join(dir, opts.casesFile ?? 'cases.json'), 'utf8'));
  const reference = await openSafetensors(path.join(dir, opts.referenceFile ?? json.reference_file ?? 'reference.safetensors'));
  return {
    dir,
    json,
    reference,
    case(id: string) {
      const c = (json.cases as FixtureCase[]).find((x) => x.id === id);
      if (!c) throw new Error(`${rel}: no case ${id}`);
      return c;
    },
    async tensor(name: string) {
      const entry = reference.entries.get(name);
      if (!entry) throw new Error(`${rel}: reference has no tensor ${name}`);
      return { data: await reference.readFloat32(name), shape: entry.shape };
    },
  };
}

/** max|a − e| / max|e| (the fixtures' normwise relative error). */
export function normwiseRelError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return maxRef === 0 ? maxErr : maxErr / maxRef;
}

/** Assert the fixtures' pass rule for one output (length too), with the error in the message. */
export function expectWithinTolerance(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number): void {
  expect(actual.length, `${label}: element count`).toBe(expected.length);
  const err = normwiseRelError(actual, expected);
  expect(err, `${label}: normwise relative error ${err.toExponential(3)} exceeds ${rel}`).toBeLessThanOrEqual(rel);
}

/** max|a − e| (the absolute rule's error). */
export function maxAbsError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let maxErr = 0;
  for (let i = 0; i < expected.length; i++) maxErr = Math.max(maxErr, Math.abs(actual[i] - expected[i]));
  return maxErr;
}

/** Assert the absolute rule `max|actual − expected| ≤ atol` for one output (length too); returns the error. */
export function expectWithinAtol(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number): number {
  expect(actual.length, `${label}: element count`).toBe(expected.length);
  const err = maxAbsError(actual, expected);
  expect(err, `${label}: max |diff| ${err.toExponential(3)} exceeds atol ${atol}`).toBeLessThanOrEqual(atol);
  return err;
}
