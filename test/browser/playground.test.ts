import { execFile, spawnSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  launchChromium,
  openPlayground,
  sentForms,
  startTarget,
  TEST_OUTPUT,
  type BrowserSession,
  type PlaygroundPage,
  type PlaygroundTarget,
  type SentForm,
} from './browser-harness';
import { FAKE_MODELS, REFUSED_PROMPT_WORD, STREAM_FAILURE_WORD } from './fake-image-api';

// The playground (edge/src/playground) in Debian's chromium, driven by playwright-core, against a fake
// of the public API (fake-image-api.ts) — or the real stack with PLAYGROUND_BASE_URL/PLAYGROUND_API_KEY.

const execFileAsync = promisify(execFile);

interface PublicModel {
  id: string;
  kind?: string;
  native_size: [number, number];
  max_pixels: number;
}

let target: PlaygroundTarget;
let session: BrowserSession;
let open: PlaygroundPage | null = null;

beforeAll(async () => {
  session = await launchChromium();
  target = await startTarget();
  await mkdir(TEST_OUTPUT, { recursive: true });
});

afterAll(async () => {
  await session?.close();
  await target?.close();
});

afterEach(async () => {
  if (!open) return;
  const { page, problems } = open;
  open = null;
  await page.close();
  expect(problems, 'script errors in the page').toEqual([]);
});

async function playgroundPage(apiKey: string | undefined = target.apiKey): Promise<Page> {
  open = await openPlayground(session, target, apiKey);
  return open.page;
}

/** The checkpoints of GET /v1/models, as the page should list them (LoRAs etc. are not selectable). */
async function checkpoints(): Promise<PublicModel[]> {
  const response = await fetch(`${target.baseUrl}/v1/models`, { headers: { Authorization: `Bearer ${target.apiKey}` } });
  expect(response.status).toBe(200);
  const list = (await response.json()) as { data: PublicModel[] };
  return list.data.filter((model) => !model.kind || model.kind === 'checkpoint');
}

function waitForFinalImage(page: Page): Promise<unknown> {
  return page.waitForFunction(() => document.getElementById('result-image')?.dataset.kind === 'final', null, { timeout: 90_000 });
}

/** Bytes of a data: URL. */
function dataUrlBytes(src: string): Buffer {
  const match = /^data:image\/[a-z]+;base64,(.+)$/.exec(src);
  expect(match, `expected a base64 data URL, got ${src.slice(0, 60)}`).not.toBeNull();
  return Buffer.from(match![1], 'base64');
}

async function rgba(bytes: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(bytes).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function pixel(image: { data: Buffer; width: number }, x: number, y: number): [number, number, number, number] {
  const i = (y * image.width + x) * 4;
  return [image.data[i], image.data[i + 1], image.data[i + 2], image.data[i + 3]];
}

/** A 256x256 PNG with a colour gradient, so a re-encoded or shifted image would not compare equal. */
async function gradientPng(): Promise<Buffer> {
  const raw = Buffer.alloc(256 * 256 * 3);
  for (let y = 0; y < 256; y++) {
    for (let x = 0; x < 256; x++) {
      const i = (y * 256 + x) * 3;
      raw[i] = x;
      raw[i + 1] = y;
      raw[i + 2] = 255 - ((x + y) >> 1);
    }
  }
  return sharp(raw, { raw: { width: 256, height: 256, channels: 3 } }).png().toBuffer();
}

/** Drag with the left button from (x0, y0) to (x1, y1), in image pixels of the mask canvas. */
async function paint(page: Page, from: [number, number], to: [number, number]): Promise<void> {
  const box = await page.locator('#mask-canvas').boundingBox();
  const size = await page.evaluate(() => {
    const canvas = document.getElementById('mask-canvas') as HTMLCanvasElement;
    return { width: canvas.width, height: canvas.height };
  });
  const at = (p: [number, number]) => [box!.x + (p[0] * box!.width) / size.width, box!.y + (p[1] * box!.height) / size.height] as const;
  await page.mouse.move(...at(from));
  await page.mouse.down();
  await page.mouse.move(...at(to), { steps: 12 });
  await page.mouse.up();
}

async function uploadForEdit(page: Page, png: Buffer): Promise<void> {
  await page.click('#mode-edit');
  await page.setInputFiles('#edit-upload', { name: 'source.png', mimeType: 'image/png', buffer: png });
  await page.waitForFunction(() => (document.getElementById('mask-canvas') as HTMLCanvasElement).width > 0);
}

async function setRange(page: Page, selector: string, value: number): Promise<void> {
  await page.$eval(
    selector,
    (input, v) => {
      (input as HTMLInputElement).value = String(v);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    },
    value,
  );
}

function formField(form: SentForm, name: string): string | undefined {
  return form.entries.find((entry) => entry.name === name)?.value;
}

function formFile(form: SentForm, name: string): Buffer | undefined {
  const entry = form.entries.find((e) => e.name === name && e.base64 !== undefined);
  return entry ? Buffer.from(entry.base64!, 'base64') : undefined;
}

/**
 * Run a snippet with bash, with `curl` (or another command) replaced by a function printing its argv
 * (NUL after each word, \x01 after each call), and return the argv of every call.
 */
async function shellArgv(script: string, command: string, env: Record<string, string> = {}): Promise<string[][]> {
  const stub = `${command}() { printf '%s\\0' "${command}" "$@"; printf '\\001'; }\n`;
  const { stdout } = await execFileAsync('bash', ['-c', stub + script], { env: { ...process.env, ...env } });
  return stdout
    .split('\x01')
    .filter((call) => call !== '')
    .map((call) => call.split('\0').slice(0, -1));
}

function argAfter(argv: string[], flag: string): string {
  const index = argv.indexOf(flag);
  expect(index, `${flag} in ${argv.join(' ')}`).toBeGreaterThanOrEqual(0);
  return argv[index + 1];
}

async function codeFor(page: Page, kind: string): Promise<string> {
  await page.click(`#code-tab-${kind}`);
  await page.waitForFunction((k) => document.getElementById(`code-tab-${k}`)?.getAttribute('aria-selected') === 'true', kind);
  return (await page.textContent('#code-text')) ?? '';
}

function pythonAvailable(): boolean {
  return spawnSync('python3', ['--version']).status === 0;
}

describe('playground page in Chromium', () => {
  it('generates: queue position and ETA, previews before the final image, then the image', async () => {
    const page = await playgroundPage();
    const [model] = await checkpoints();
    await page.evaluate(() => {
      const log: Array<Record<string, string | null | undefined>> = [];
      (window as unknown as { __log: typeof log }).__log = log;
      const image = document.getElementById('result-image')!;
      new MutationObserver(() => log.push({ kind: image.dataset.kind, src: image.getAttribute('src') })).observe(image, {
        attributes: true,
        attributeFilter: ['src', 'data-kind'],
      });
      const progress = document.getElementById('progress')!;
      new MutationObserver(() => log.push({ progress: progress.textContent })).observe(progress, {
        subtree: true,
        childList: true,
        characterData: true,
      });
    });

    await page.fill('#prompt', 'a red apple');
    const sent = page.waitForRequest((request) => request.url().endsWith('/v1/images/generations'));
    await page.click('#submit');
    expect((await sent).postDataJSON()).toEqual({
      model: model.id,
      prompt: 'a red apple',
      n: 1,
      size: `${model.native_size[0]}x${model.native_size[1]}`,
      response_format: 'b64_json',
      quality: 'standard',
      style: 'vivid',
      output_format: 'png',
      stream: true,
    });
    await waitForFinalImage(page);

    const log = await page.evaluate(() => (window as unknown as { __log: Array<Record<string, string | null | undefined>> }).__log);
    const firstPreview = log.findIndex((entry) => entry.kind === 'preview' && entry.src);
    const firstFinal = log.findIndex((entry) => entry.kind === 'final');
    expect(firstPreview, 'a preview was shown').toBeGreaterThanOrEqual(0);
    expect(firstPreview).toBeLessThan(firstFinal);
    const progressTexts = log.map((entry) => entry.progress).filter((text): text is string => typeof text === 'string');
    expect(progressTexts.some((text) => /Step \d+ \/ \d+/.test(text))).toBe(true);
    expect(progressTexts.some((text) => /ETA \d/.test(text))).toBe(true);

    const finalSrc = (await page.getAttribute('#result-image', 'src'))!;
    const final = await sharp(dataUrlBytes(finalSrc)).metadata();
    expect([final.format, final.width, final.height]).toEqual(['png', model.native_size[0], model.native_size[1]]);
    expect(await page.isHidden('#progress')).toBe(true);
    expect(await page.getAttribute('#result', 'data-task-id')).toMatch(/\S/);
    if (target.fake) {
      // The fake's exact events: queue position 2, two partial images, then the red image.
      expect(progressTexts.some((text) => text.includes('Queue position 2'))).toBe(true);
      const previewSrcs = log.filter((entry) => entry.kind === 'preview').map((entry) => entry.src);
      expect(previewSrcs).toContain(`data:image/png;base64,${target.fake.images.preview[0]}`);
      expect(finalSrc).toBe(`data:image/png;base64,${target.fake.images.generated}`);
      expect(await page.textContent('#result-caption')).toContain('seed 1234');
    }
    await page.screenshot({ path: path.join(TEST_OUTPUT, 'playground.png'), fullPage: true });
  });

  it('Download Image saves the image; Clear removes the prompt and the image', async () => {
    const page = await playgroundPage();
    await page.fill('#prompt', 'a blue sky');
    await page.click('#submit');
    await waitForFinalImage(page);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-image')]);
    const saved = await readFile((await download.path())!);
    expect(download.suggestedFilename()).toMatch(/^image-\d+\.png$/);
    expect(saved.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    if (target.fake) expect(saved).toEqual(Buffer.from(target.fake.images.generated, 'base64'));

    await page.click('#clear');
    expect(await page.inputValue('#prompt')).toBe('');
    expect(await page.isHidden('#result-image')).toBe(true);
    expect(await page.getAttribute('#result-image', 'src')).toBeNull();
    expect(await page.isDisabled('#download-image')).toBe(true);
  });

  it('has a favicon, a link to /docs and says where the key comes from', async () => {
    const page = await playgroundPage();
    const icon = await page.getAttribute('link[rel="icon"]', 'href');
    const served = await page.request.get(new URL(icon!, target.baseUrl).href);
    expect(served.status()).toBe(200);
    expect(served.headers()['content-type']).toContain('image/svg+xml');
    expect(await served.text()).toContain('<svg');
    expect(await page.getAttribute('#docs-link', 'href')).toBe('/docs');
    expect(await page.textContent('#api-key-hint')).toContain('printed by npm start');
    await page.screenshot({ path: path.join(TEST_OUTPUT, 'playground-header.png'), clip: { x: 0, y: 0, width: 1280, height: 180 } });
  });

  it('switching to Edit leaves no earlier result under the edit panel, and the size box shows its whole value', async () => {
    const page = await playgroundPage();
    await page.fill('#prompt', 'a blue sky');
    await page.click('#submit');
    await waitForFinalImage(page);
    await uploadForEdit(page, await gradientPng());
    expect(await page.isHidden('#result-image')).toBe(true);
    expect(await page.locator('[data-testid=result-thumb]').count()).toBe(0);
    expect(await page.isDisabled('#download-image')).toBe(true);
    // The disabled size box holds the image's own size; its text must fit (no clipped "(image si").
    const size = await page.$eval('#size', (el) => {
      const select = el as HTMLSelectElement;
      const probe = document.createElement('span');
      probe.style.cssText = `font: ${getComputedStyle(select).font}; position: absolute; visibility: hidden; white-space: pre`;
      probe.textContent = select.options[select.selectedIndex].text;
      document.body.appendChild(probe);
      const needed = probe.getBoundingClientRect().width;
      probe.remove();
      return { text: select.options[select.selectedIndex].text, needed, available: select.clientWidth };
    });
    expect(size.text).toMatch(/^\d+x\d+$/);
    expect(size.needed, JSON.stringify(size)).toBeLessThan(size.available - 16);
    await page.screenshot({ path: path.join(TEST_OUTPUT, 'playground-edit-after-generate.png'), fullPage: true });
    // Back in Generate mode the page starts clean too.
    await page.click('#mode-generate');
    expect(await page.isHidden('#result-image')).toBe(true);
  });

  it('Preview = None asks for no previews and shows none', async () => {
    const page = await playgroundPage();
    await page.click('#param-style-advanced');
    await page.selectOption('#preview', 'none');
    await page.fill('#prompt', 'green grass');
    const sent = page.waitForRequest((request) => request.url().endsWith('/v1/images/generations'));
    await page.click('#submit');
    const body = (await sent).postDataJSON();
    expect([body.preview, body.stream]).toEqual(['none', true]);
    await waitForFinalImage(page);
    expect(await page.getAttribute('#result-image', 'data-previews')).toBe('0');
  });

  it('offers only the samplers a flow model accepts (its listing’s samplers), all of them again for a UNet model', async () => {
    // The fake API lists a FLUX model; a real stack's models are whatever its MODELS_DIR holds.
    if (!target.fake) return;
    const page = await playgroundPage();
    await page.click('#param-style-advanced');
    const offered = () => page.$$eval('#sample_method option', (options) => options.map((o) => (o as HTMLOptionElement).value));
    await page.selectOption('#sample_method', 'dpm++2m');
    await page.selectOption('#model', 'flux/flux1-schnell-Q4_0.gguf');
    expect(await offered()).toEqual(['euler', 'heun', 'dpm2', 'ipndm', 'ipndm_v']);
    // dpm++2m does not apply: the default (euler_a) does not either, so the first allowed one is chosen.
    expect(await page.inputValue('#sample_method')).toBe('euler');
    await page.selectOption('#sample_method', 'heun');
    await page.selectOption('#model', 'tiny-analytic');
    expect(await offered()).toEqual(['euler_a', 'euler', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m', 'dpm++2mv2', 'ipndm', 'ipndm_v', 'lcm']);
    expect(await page.inputValue('#sample_method')).toBe('heun');
  });

  it('Advanced: the add-on pickers list the server’s LoRAs and VAEs and the request carries the picked ones', async () => {
    if (!target.fake) return;
    const page = await playgroundPage();
    await page.click('#param-style-advanced');
    expect(await page.$$eval('#lora-name option', (options) => options.map((o) => (o as HTMLOptionElement).value))).toEqual(['detail-lora']);
    expect(await page.$$eval('#vae option', (options) => options.map((o) => (o as HTMLOptionElement).value))).toEqual(['', 'vae-ft-mse']);
    await page.fill('#lora-strength', '0.7');
    await page.click('#lora-add');
    expect(await page.textContent('#lora-list')).toContain('detail-lora × 0.7');
    await page.selectOption('#vae', 'vae-ft-mse');
    await page.fill('#prompt', 'green grass');
    const sent = page.waitForRequest((request) => request.url().endsWith('/v1/images/generations'));
    await page.click('#submit');
    const body = (await sent).postDataJSON();
    expect([body.loras, body.vae, body.embeddings]).toEqual([[{ model_name: 'detail-lora', strength: 0.7 }], 'vae-ft-mse', undefined]);
    await waitForFinalImage(page);
    await page.click('#lora-list button');
    expect(await page.$$('#lora-list li')).toHaveLength(0);
  });

  it('Background: auto sends nothing, transparent is sent when the server lists a matting model and disabled when not', async () => {
    if (!target.fake) return;
    let page = await playgroundPage();
    await page.waitForFunction(() => !(document.querySelector('#background option[value="transparent"]') as HTMLOptionElement | null)?.disabled);
    expect(await page.$$eval('#background option', (options) => options.map((o) => (o as HTMLOptionElement).value))).toEqual(['auto', 'opaque', 'transparent']);
    expect(await page.inputValue('#background')).toBe('auto');
    await page.fill('#prompt', 'a glass bottle');
    let sent = page.waitForRequest((request) => request.url().endsWith('/v1/images/generations'));
    await page.click('#submit');
    expect('background' in (await sent).postDataJSON()).toBe(false);
    await waitForFinalImage(page);
    await page.selectOption('#background', 'transparent');
    sent = page.waitForRequest((request) => request.url().endsWith('/v1/images/generations'));
    await page.click('#submit');
    expect((await sent).postDataJSON()).toMatchObject({ background: 'transparent', output_format: 'png' });
    await waitForFinalImage(page);
    expect(open!.problems, 'script errors in the page').toEqual([]);
    await page.close();
    open = null;

    // A server without a matting model: transparent cannot be picked, and says why.
    const index = FAKE_MODELS.findIndex((model) => model.kind === 'matting');
    const [matting] = FAKE_MODELS.splice(index, 1);
    try {
      page = await playgroundPage();
      await page.waitForFunction(() => /no matting model/.test(document.querySelector('#background option[value="transparent"]')?.textContent ?? ''));
      expect(await page.$eval('#background option[value="transparent"]', (o) => (o as HTMLOptionElement).disabled)).toBe(true);
    } finally {
      FAKE_MODELS.splice(index, 0, matting);
    }
  });

  it('lists the checkpoints in the model drop-down and limits sizes to each model’s max_pixels', async () => {
    const page = await playgroundPage();
    const models = await checkpoints();
    const listed = await page.$$eval('#model option', (options) => options.map((o) => (o as HTMLOptionElement).value));
    expect(listed).toEqual(models.map((model) => model.id));
    if (target.fake) expect(listed).not.toContain('detail-lora');
    for (const model of models) {
      await page.selectOption('#model', model.id);
      const sizes = await page.$$eval('#size option', (options) => options.map((o) => (o as HTMLOptionElement).value));
      expect(sizes.length).toBeGreaterThan(1);
      for (const size of sizes) {
        const [width, height] = size.split('x').map(Number);
        expect(width * height, `${size} for ${model.id}`).toBeLessThanOrEqual(model.max_pixels);
        expect(width % 8 + (height % 8)).toBe(0);
      }
      expect(await page.inputValue('#size')).toBe(`${model.native_size[0]}x${model.native_size[1]}`);
    }
    if (target.fake) {
      await page.selectOption('#model', 'sd-turbo-onnx');
      const sizes = await page.$$eval('#size option', (options) => options.map((o) => (o as HTMLOptionElement).value));
      // max_pixels 768 * 1024: 1024x768 fits, 1024x1024 does not.
      expect(sizes).toContain('1024x768');
      expect(sizes).not.toContain('1024x1024');
    }
  });

  it('keeps the API key in localStorage across reloads until Forget', async () => {
    const page = await playgroundPage();
    expect(await page.evaluate(() => window.localStorage.getItem('image-playground.api-key'))).toBe(target.apiKey);
    await page.reload();
    await page.waitForFunction(() => /Key saved/.test(document.getElementById('api-key-status')?.textContent ?? ''));
    expect(await page.inputValue('#api-key')).toBe(target.apiKey);
    expect(await page.$$eval('#model option', (options) => options.length)).toBeGreaterThan(0);
    await page.click('#api-key-forget');
    expect(await page.evaluate(() => window.localStorage.getItem('image-playground.api-key'))).toBeNull();
    expect(await page.inputValue('#api-key')).toBe('');
  });

  it('shows the API’s error message for a wrong key', async () => {
    const page = await playgroundPage(undefined);
    await page.fill('#api-key', 'not-a-valid-key');
    await page.click('#api-key-save');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.getAttribute('#error', 'data-status')).toBe('401');
    await page.fill('#prompt', 'a red apple');
    await page.click('#submit');
    await page.waitForFunction(() => !document.getElementById('error')!.hidden && document.getElementById('error')!.dataset.status === '401');
    const message = (await page.textContent('#error-message')) ?? '';
    expect(message.trim().length).toBeGreaterThan(0);
    if (target.fake) expect(message).toBe(target.fake.messages.badKey);
    expect(await page.isHidden('#result-image')).toBe(true);
  });

  it.skipIf(!!process.env.PLAYGROUND_BASE_URL)('shows a 400 error body and an error event from the stream (fake API only)', async () => {
    const fake = target.fake!;
    const page = await playgroundPage();
    await page.fill('#prompt', `a red apple ${REFUSED_PROMPT_WORD}`);
    await page.click('#submit');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error-message')).toBe(fake.messages.refusedPrompt);
    expect(await page.textContent('#error')).toContain('prompt');

    await page.fill('#prompt', `a red apple ${STREAM_FAILURE_WORD}`);
    await page.click('#submit');
    await page.waitForFunction((text) => document.getElementById('error-message')?.textContent === text, fake.messages.streamFailure);
    expect(await page.isHidden('#result-image')).toBe(true);
    expect(await page.isHidden('#progress')).toBe(true);
  });

  it.skipIf(!!process.env.PLAYGROUND_BASE_URL)('falls back to a JSON request when the server refuses streaming (fake API only)', async () => {
    const fake = target.fake!;
    fake.behaviour.refuseStream = true;
    try {
      const page = await playgroundPage();
      const before = fake.requests.length;
      await page.fill('#prompt', 'a yellow lemon');
      await page.click('#submit');
      await waitForFinalImage(page);
      const calls = fake.requests.slice(before).filter((request) => request.path === '/v1/images/generations');
      expect(calls.map((call) => call.json?.stream)).toEqual([true, undefined]);
      expect(await page.getAttribute('#result-image', 'src')).toBe(`data:image/png;base64,${fake.images.generated}`);
      await page.click('#view-code');
      expect(await codeFor(page, 'curl')).not.toContain('"stream"');
    } finally {
      fake.behaviour.refuseStream = false;
    }
  });

  it('Edit: mouse drags paint a mask; the edit request carries it, transparent where painted', async () => {
    const page = await playgroundPage();
    const source = await gradientPng();
    await uploadForEdit(page, source);
    expect(await page.inputValue('#size')).toBe('256x256');
    await setRange(page, '#brush-size', 20);
    await paint(page, [40, 40], [200, 40]);
    expect(await page.getAttribute('#mask-canvas', 'data-painted')).toBe('true');
    await page.fill('#prompt', 'a red apple');
    await page.click('#submit');
    await waitForFinalImage(page);

    const forms = await sentForms(page);
    expect(forms).toHaveLength(1);
    const form = forms[0];
    expect(form.url).toBe('/v1/images/edits');
    expect([formField(form, 'prompt'), formField(form, 'size'), formField(form, 'n'), formField(form, 'stream')]).toEqual([
      'a red apple',
      '256x256',
      '1',
      'true',
    ]);
    // The source goes out pixel for pixel as uploaded.
    const sentImage = await rgba(formFile(form, 'image')!);
    expect(sentImage.data.equals((await rgba(source)).data)).toBe(true);
    // OpenAI convention: alpha 0 where painted, opaque elsewhere; same size as the image.
    const mask = await rgba(formFile(form, 'mask')!);
    expect([mask.width, mask.height]).toEqual([256, 256]);
    for (const x of [45, 80, 120, 160, 195]) expect(pixel(mask, x, 40)[3], `painted (${x}, 40)`).toBe(0);
    for (const [x, y] of [[120, 70], [120, 10], [230, 40], [10, 200], [200, 200]]) {
      expect(pixel(mask, x, y)[3], `unpainted (${x}, ${y})`).toBe(255);
    }
    if (target.fake) {
      // What the server received is what the page built.
      const received = target.fake.requests.at(-1)!;
      expect(received.files!.mask.bytes.equals(formFile(form, 'mask')!)).toBe(true);
      expect(received.files!.image.bytes.equals(formFile(form, 'image')!)).toBe(true);
      expect(await page.getAttribute('#result-image', 'src')).toBe(`data:image/png;base64,${target.fake.images.edited}`);
    } else {
      // A real inpainting model leaves the pixels away from the painted band as they were.
      const result = await rgba(dataUrlBytes((await page.getAttribute('#result-image', 'src'))!));
      const original = await rgba(source);
      expect([result.width, result.height]).toEqual([256, 256]);
      for (const [x, y] of [[120, 120], [10, 200], [200, 200], [240, 10], [128, 250]]) {
        const before = pixel(original, x, y);
        const after = pixel(result, x, y);
        for (let c = 0; c < 3; c++) expect(Math.abs(after[c] - before[c]), `pixel (${x}, ${y}) channel ${c}`).toBeLessThanOrEqual(3);
      }
    }
    await page.screenshot({ path: path.join(TEST_OUTPUT, 'playground-edit.png'), fullPage: true });
  });

  it('Edit with nothing painted sends no mask (the whole image changes)', async () => {
    const page = await playgroundPage();
    await uploadForEdit(page, await gradientPng());
    await page.fill('#prompt', 'a green forest');
    await page.click('#submit');
    await waitForFinalImage(page);
    const [form] = await sentForms(page);
    expect(form.entries.map((entry) => entry.name)).toContain('image');
    expect(form.entries.map((entry) => entry.name)).not.toContain('mask');
  });

  it('Undo and Eraser change the mask; Save Mask downloads it as a white-on-black PNG', async () => {
    const page = await playgroundPage();
    await uploadForEdit(page, await gradientPng());
    await setRange(page, '#brush-size', 24);
    await paint(page, [30, 60], [220, 60]);
    await paint(page, [30, 200], [220, 200]);
    await page.click('#mask-undo');
    await page.click('#tool-eraser');
    await setRange(page, '#brush-size', 40);
    await paint(page, [110, 60], [150, 60]);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save-mask')]);
    expect(download.suggestedFilename()).toBe('mask.png');
    const savedBytes = await readFile((await download.path())!);
    expect((await sharp(savedBytes).metadata()).format).toBe('png');
    const saved = await rgba(savedBytes);
    expect([saved.width, saved.height]).toEqual([256, 256]);
    expect(pixel(saved, 50, 60)).toEqual([255, 255, 255, 255]); // painted
    expect(pixel(saved, 200, 60)).toEqual([255, 255, 255, 255]); // painted
    expect(pixel(saved, 130, 60)).toEqual([0, 0, 0, 255]); // erased
    expect(pixel(saved, 128, 200)).toEqual([0, 0, 0, 255]); // undone
    expect(pixel(saved, 128, 128)).toEqual([0, 0, 0, 255]); // never painted

    await page.fill('#prompt', 'a red apple');
    await page.click('#submit');
    await waitForFinalImage(page);
    const [form] = await sentForms(page);
    const mask = await rgba(formFile(form, 'mask')!);
    expect([pixel(mask, 50, 60)[3], pixel(mask, 200, 60)[3], pixel(mask, 130, 60)[3], pixel(mask, 128, 200)[3]]).toEqual([0, 0, 255, 255]);
  });

  it('View Code: the curl is the exact request and runs as-is; Python, Node.js, async and draw match', async () => {
    const page = await playgroundPage();
    const [model] = await checkpoints();
    const size = `${model.native_size[0]}x${model.native_size[1]}`;
    await page.fill('#prompt', "it's a red apple");
    await page.click('#param-style-advanced');
    await page.selectOption('#sample_method', 'dpm++2m');
    await page.selectOption('#schedule_method', 'karras');
    await page.fill('#sampling_steps', '4');
    await page.fill('#cfg_scale', '6.5');
    await page.fill('#seed', '42');
    await page.fill('#negative_prompt', 'blurry');
    const expectedBody = {
      model: model.id,
      prompt: "it's a red apple",
      n: 1,
      size,
      response_format: 'b64_json',
      sample_method: 'dpm++2m',
      schedule_method: 'karras',
      sampling_steps: 4,
      // guidance (distilled, FLUX-class models only) is left out while its box is empty.
      cfg_scale: 6.5,
      negative_prompt: 'blurry',
      seed: 42,
      preview: 'faster',
      stream: true,
    };

    await page.click('#view-code');
    await page.waitForSelector('#code-dialog[open]');
    const curl = await codeFor(page, 'curl');
    const [argv] = await shellArgv(curl, 'curl', { IMAGE_API_KEY: target.apiKey });
    expect(argv).toContain(`${target.baseUrl}/v1/images/generations`);
    expect(argv).toContain(`Authorization: Bearer ${target.apiKey}`);
    expect(JSON.parse(argAfter(argv, '-d'))).toEqual(expectedBody);

    // Copy puts the same text on the clipboard.
    await session.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: target.baseUrl });
    await page.click('#code-copy');
    await page.waitForFunction(() => document.getElementById('code-copied')?.textContent === 'Copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(curl);

    // The same body is what Submit sends.
    await page.click('#code-close');
    const sent = page.waitForRequest((request) => request.url().endsWith('/v1/images/generations'));
    await page.click('#submit');
    expect((await sent).postDataJSON()).toEqual(expectedBody);
    await waitForFinalImage(page);

    // Run as-is: the streamed answer ends with a completed event carrying a PNG.
    const { stdout } = await execFileAsync('bash', ['-c', curl], {
      env: { ...process.env, IMAGE_API_KEY: target.apiKey },
      maxBuffer: 64 * 1024 * 1024,
    });
    const completed = stdout
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)))
      .filter((event) => event.type === 'image_generation.completed');
    expect(completed).toHaveLength(1);
    expect(completed[0].seed).toBe(42);
    expect((await sharp(Buffer.from(completed[0].b64_json, 'base64')).metadata()).format).toBe('png');

    await page.click('#view-code');
    const python = await codeFor(page, 'python');
    expect(python).toContain(`client = OpenAI(base_url="${target.baseUrl}/v1", api_key=os.environ["IMAGE_API_KEY"])`);
    expect(python).toContain('client.images.generate(');
    expect(python).toContain('prompt="it\'s a red apple"');
    expect(python).toContain('"sample_method": "dpm++2m"');
    expect(python).toContain('"seed": 42');

    if (pythonAvailable()) {
      const check = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], { input: python });
      expect(check.stderr.toString(), 'the Python snippet parses').toBe('');
      expect(check.status).toBe(0);
    } else {
      console.warn('python3 not found: the Python snippet was not syntax-checked');
    }

    // The Node.js snippet runs as-is with the openai SDK (resolved from this repo's node_modules).
    const node = await codeFor(page, 'node');
    expect(node).toContain('sample_method: "dpm++2m"');
    const folder = path.join(TEST_OUTPUT, 'view-code-node');
    await rm(folder, { recursive: true, force: true });
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'snippet.mjs'), node);
    await execFileAsync(process.execPath, ['snippet.mjs'], { cwd: folder, env: { ...process.env, IMAGE_API_KEY: target.apiKey } });
    const written = await sharp(await readFile(path.join(folder, 'image-0.png'))).metadata();
    expect([written.format, written.width, written.height]).toEqual(['png', model.native_size[0], model.native_size[1]]);

    const asyncTask = await codeFor(page, 'async');
    const [submitArgv] = await shellArgv(asyncTask, 'curl', { IMAGE_API_KEY: target.apiKey, TASK_ID: 'abc' });
    expect(submitArgv).toContain(`${target.baseUrl}/v3/async/txt2img`);
    expect(JSON.parse(argAfter(submitArgv, '-d'))).toEqual({
      extra: { response_image_type: 'png' },
      request: {
        model_name: model.id,
        prompt: "it's a red apple",
        negative_prompt: 'blurry',
        width: model.native_size[0],
        height: model.native_size[1],
        image_num: 1,
        steps: 4,
        guidance_scale: 6.5,
        sampler_name: 'DPM++ 2M Karras',
        seed: 42,
      },
    });

    const draw = await codeFor(page, 'draw');
    // `npx draw …`: runs in a clone of the repository after npm install (the e2e stack test runs it for real).
    const [drawArgv] = await shellArgv(draw, 'npx');
    expect(drawArgv).toEqual([
      'npx',
      'draw',
      model.id,
      "it's a red apple",
      '--size',
      size,
      '--sampler',
      'dpm++2m',
      '--scheduler',
      'karras',
      '--sample-steps',
      '4',
      '--cfg-scale',
      '6.5',
      '--seed',
      '42',
      '--negative-prompt',
      'blurry',
    ]);
    expect(draw).toContain(`IMAGE_API_URL=${target.baseUrl} npx draw`);
  });

  it('View Code in Edit mode uploads source.png and, once painted, mask.png', async () => {
    const page = await playgroundPage();
    await uploadForEdit(page, await gradientPng());
    await page.fill('#prompt', 'a red apple');
    await page.click('#view-code');
    let [argv] = await shellArgv(await codeFor(page, 'curl'), 'curl', { IMAGE_API_KEY: target.apiKey });
    expect(argv).toContain(`${target.baseUrl}/v1/images/edits`);
    expect(argv).toContain('image=@source.png');
    expect(argv).not.toContain('mask=@mask.png');
    expect(argv).toContain('prompt=a red apple');
    await page.click('#code-close');

    await paint(page, [40, 40], [120, 40]);
    await page.click('#view-code');
    [argv] = await shellArgv(await codeFor(page, 'curl'), 'curl', { IMAGE_API_KEY: target.apiKey });
    expect(argv).toContain('mask=@mask.png');
    expect(await codeFor(page, 'async')).toContain('/v3/async/inpainting');
  });

  it('the random-prompt button fills the prompt and changes it on every press', async () => {
    const page = await playgroundPage();
    await page.click('#random-prompt');
    const first = await page.inputValue('#prompt');
    expect(first.length).toBeGreaterThan(5);
    await page.click('#random-prompt');
    expect(await page.inputValue('#prompt')).not.toBe(first);
  });
});
