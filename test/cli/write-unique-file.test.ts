import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeUniqueFile } from '../../cli/src/write-unique-file';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'draw-unique-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeUniqueFile', () => {
  it('writes the requested name when it is free', async () => {
    const file = path.join(dir, 'a.png');
    expect(await writeUniqueFile(file, new Uint8Array([1, 2, 3]))).toBe(file);
    expect([...(await readFile(file))]).toEqual([1, 2, 3]);
  });

  it('numbers the name instead of overwriting, and keeps the old contents', async () => {
    const file = path.join(dir, 'a.png');
    await writeFile(file, 'old');
    await writeFile(path.join(dir, 'a-1.png'), 'older');
    expect(await writeUniqueFile(file, new Uint8Array([9]))).toBe(path.join(dir, 'a-2.png'));
    expect(await readFile(file, 'utf8')).toBe('old');
    expect(await readFile(path.join(dir, 'a-1.png'), 'utf8')).toBe('older');
  });

  it('gives each of several simultaneous writers its own file', async () => {
    const file = path.join(dir, 'same.png');
    const written = await Promise.all([0, 1, 2, 3].map((i) => writeUniqueFile(file, new Uint8Array([i]))));
    expect(new Set(written).size).toBe(4);
    expect((await readdir(dir)).sort()).toEqual(['same-1.png', 'same-2.png', 'same-3.png', 'same.png']);
  });

  it('reports a missing folder as the file-system error', async () => {
    await expect(writeUniqueFile(path.join(dir, 'nope', 'a.png'), new Uint8Array([1]))).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });
});
