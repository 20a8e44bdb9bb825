import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startFakeImageApi, type FakeImageApi } from './fake-image-api';

/** Debian's chromium (installed by .ci/run with apt); playwright-core never downloads a browser. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (test/browser → ../..). */
export const REPO_ROOT = path.resolve(here, '../..');
/** Where screenshots and other artefacts for review go (git-ignored). */
export const TEST_OUTPUT = path.join(REPO_ROOT, 'test-output');

/**
 * What the browser tests run against. By default a fake API (fake-image-api.ts) that serves the real
 * playground page; with PLAYGROUND_BASE_URL (e.g. http://127.0.0.1:8787 from `npm start`) and
 * PLAYGROUND_API_KEY the same tests drive the real stack, and `fake` is null.
 */
export interface PlaygroundTarget {
  baseUrl: string;
  apiKey: string;
  fake: FakeImageApi | null;
  close(): Promise<void>;
}

/** Start the fake, or use the real stack named by PLAYGROUND_BASE_URL / PLAYGROUND_API_KEY. */
export async function startTarget(): Promise<PlaygroundTarget> {
  const external = process.env.PLAYGROUND_BASE_URL;
  if (external) {
    const apiKey = process.env.PLAYGROUND_API_KEY;
    if (!apiKey) throw new Error('PLAYGROUND_BASE_URL is set but PLAYGROUND_API_KEY is not: give the API key of that stack.');
    return { baseUrl: external.replace(/\/+$/, ''), apiKey, fake: null, close: async () => {} };
  }
  const fake = await startFakeImageApi();
  return { baseUrl: fake.baseUrl, apiKey: fake.apiKey, fake, close: () => fake.close() };
}

/** A persistent Chromium context on a fresh profile directory, plus its cleanup. */
export interface BrowserSession {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Launch Debian's chromium headless on a fresh --user-data-dir (launchPersistentContext passes it).
 * @throws Error naming the missing binary and how to install it (the tests fail, they do not skip)
 */
export async function launchChromium(): Promise<BrowserSession> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM_PATH}: the playground browser tests need it. ` +
        'Install it with `apt-get install -y chromium` (CI: .ci/run does this) or set CHROMIUM_PATH.',
    );
  }
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'playground-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
    viewport: { width: 1280, height: 960 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/** A multipart body the page passed to fetch(): text fields as value, files as base64. */
export interface SentForm {
  url: string;
  entries: Array<{ name: string; value?: string; filename?: string; type?: string; base64?: string }>;
}

/** The multipart bodies the page has sent so far (see openPlayground). */
export async function sentForms(page: Page): Promise<SentForm[]> {
  return page.evaluate(() => (window as unknown as { __sentForms: SentForm[] }).__sentForms);
}

/** A page on the playground, with every uncaught page error and console error collected. */
export interface PlaygroundPage {
  page: Page;
  /** Uncaught exceptions and console.error lines seen so far (each test expects none). */
  problems: string[];
}

/**
 * Open the playground with an empty localStorage. With `apiKey` the key is typed and saved the way a
 * user does it, and the call returns once the model list has loaded.
 */
export async function openPlayground(session: BrowserSession, target: PlaygroundTarget, apiKey?: string): Promise<PlaygroundPage> {
  const page = await session.context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    // Failed API calls (401/400 the test asked for) are logged by the browser as resource errors; the
    // page reports those itself, so only script errors count here.
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  // Chromium does not show Blob parts of a multipart body to request interception, so the tests read
  // what the page handed to fetch() (which the browser sends unchanged): window.__sentForms.
  await page.addInitScript(() => {
    const originalFetch = window.fetch.bind(window);
    const sent: SentForm[] = [];
    (window as unknown as { __sentForms: SentForm[] }).__sentForms = sent;
    window.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      if (init && init.body instanceof FormData) {
        const entries: SentForm['entries'] = [];
        const parts: Array<[string, FormDataEntryValue]> = [];
        init.body.forEach((value, name) => parts.push([name, value]));
        for (const [name, value] of parts) {
          if (typeof value === 'string') {
            entries.push({ name, value });
          } else {
            const bytes = new Uint8Array(await value.arrayBuffer());
            let binary = '';
            for (const byte of bytes) binary += String.fromCharCode(byte);
            entries.push({ name, filename: value.name, type: value.type, base64: btoa(binary) });
          }
        }
        sent.push({ url: String(input), entries });
      }
      return originalFetch(input, init);
    };
  });
  await page.goto(`${target.baseUrl}/playground`);
  await page.evaluate(() => window.localStorage.clear());
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready === 'true');
  if (apiKey !== undefined) {
    await page.fill('#api-key', apiKey);
    await page.click('#api-key-save');
    await page.waitForFunction(() => /Key saved/.test(document.getElementById('api-key-status')?.textContent ?? ''));
  }
  return { page, problems };
}
