import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDrawOptions, type DrawFlags } from '../../cli/src/draw-options';
import { UserError } from '../../cli/src/user-error';

let cwd: string;
beforeAll(async () => {
  cwd = await mkdtemp(path.join(tmpdir(), 'draw-options-'));
  await mkdir(path.join(cwd, 'shots'));
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

const FLAGS: DrawFlags = { sampler: 'euler', baseUrl: 'http://127.0.0.1:8787', apiKey: 'sk-x' };

describe('resolveDrawOptions', () => {
  it('one positional is the prompt, two are model then prompt', async () => {
    expect(await resolveDrawOptions(['a red apple'], FLAGS, cwd)).toMatchObject({ model: null, prompt: 'a red apple' });
    expect(await resolveDrawOptions(['tiny-analytic', 'a red apple'], FLAGS, cwd)).toMatchObject({
      model: 'tiny-analytic',
      prompt: 'a red apple',
    });
    expect((await resolveDrawOptions(['hf.co/org/repo:Q8_0', 'a cat'], FLAGS, cwd)).model).toBe('hf.co/org/repo:Q8_0');
  });

  it('leaves out what the user did not set', async () => {
    expect(await resolveDrawOptions(['a cat'], FLAGS, cwd)).toMatchObject({
      size: null,
      scheduler: null,
      steps: null,
      cfgScale: null,
      seed: null,
      negativePrompt: null,
      loras: [],
      vae: null,
      background: null,
      format: 'png',
      output: { kind: 'folder', folder: '.' },
      show: false,
      debug: false,
    });
  });

  it.each([
    [{ output: 'cat.jpg' }, 'jpeg', { kind: 'file', path: 'cat.jpg' }],
    [{ output: 'cat.JPEG' }, 'jpeg', { kind: 'file', path: 'cat.JPEG' }],
    [{ output: 'cat.webp', format: 'webp' }, 'webp', { kind: 'file', path: 'cat.webp' }],
    [{ output: 'cat' }, 'png', { kind: 'file', path: 'cat.png' }],
    [{ output: 'cat', format: 'jpeg' }, 'jpeg', { kind: 'file', path: 'cat.jpg' }],
    [{ output: 'cat.v2' }, 'png', { kind: 'file', path: 'cat.v2.png' }],
    [{ output: 'shots' }, 'png', { kind: 'folder', folder: 'shots' }],
    [{ output: 'shots/', format: 'webp' }, 'webp', { kind: 'folder', folder: 'shots/' }],
    [{ output: 'shots/cat.png' }, 'png', { kind: 'file', path: 'shots/cat.png' }],
  ] as const)('--output %j → %s %j', async (flags, format, output) => {
    const options = await resolveDrawOptions(['a cat'], { ...FLAGS, ...flags }, cwd);
    expect(options.format).toBe(format);
    expect(options.output).toEqual(output);
  });

  it('refuses what it cannot do, as usage errors that say how to fix them', async () => {
    const cases: [string[], Partial<DrawFlags>, RegExp][] = [
      [['a', 'b', 'c'], {}, /at most two arguments/],
      [[], {}, /missing the prompt/],
      [[''], {}, /prompt is empty/],
      [['', 'a cat'], {}, /model name is empty/],
      [['hf.co/a', 'a cat'], {}, /hf\.co\/<org>\/<repo>/],
      [['hf.co/a/b:', 'a cat'], {}, /hf\.co\/<org>\/<repo>/],
      [['a cat'], { output: 'nope/cat.png' }, /output folder nope does not exist/],
      [['a cat'], { output: 'cat.png', format: 'jpeg' }, /names a png file but --format asks for jpeg/],
      [['a cat'], { output: ' ' }, /--output is empty/],
      [['a cat'], { background: 'transparent', format: 'jpeg' }, /--background transparent needs png or webp/],
      [['a cat'], { background: 'transparent', output: 'cat.jpg' }, /--background transparent needs png or webp/],
    ];
    for (const [positionals, flags, message] of cases) {
      const error = await resolveDrawOptions(positionals, { ...FLAGS, ...flags }, cwd).catch((caught: unknown) => caught);
      expect(error, message.source).toBeInstanceOf(UserError);
      expect((error as UserError).message).toMatch(message);
      expect((error as UserError).exitCode).toBe(2);
      expect((error as UserError).hint).toBeTruthy();
    }
  });

  it('a missing API key is an authentication error (exit 3)', async () => {
    const error = (await resolveDrawOptions(['a cat'], { ...FLAGS, apiKey: ' ' }, cwd).catch((e: unknown) => e)) as UserError;
    expect(error.exitCode).toBe(3);
    expect(error.hint).toContain('IMAGE_API_KEY');
  });
});
