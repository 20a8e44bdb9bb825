/**
 * Download a model from a Hugging Face endpoint (HF_ENDPOINT) into MODELS_DIR, atomically.
 *
 * Layout (the Hugging Face Hub's): files are fetched from `<endpoint>/<org>/<repo>/resolve/<revision>/<path>`.
 * Which files: the Hub's tree API `<endpoint>/api/models/<org>/<repo>/tree/<revision>?recursive=true`
 * (a JSON array of `{ type: 'file' | 'directory', path, size, lfs?: { size } }`, paginated with a
 * `Link: <…>; rel="next"` header), filtered to the diffusers ONNX pipeline layout — model_index.json and
 * the .json/.txt/.onnx/.onnx_data/.pb files of scheduler/, tokenizer(_2)/, text_encoder(_2)/, unet/,
 * vae_decoder/, vae_encoder/. When the endpoint has no tree API (404, e.g. a plain file mirror), a fixed
 * list of that layout's files is fetched instead (the optional ones may be missing). A `:<file>` reference
 * fetches that one file.
 *
 * Safety: everything goes into a hidden temporary folder `.download-*` beside the models (hidden folders
 * are never listed as models); every file's byte count must equal its Content-Length (and the tree's size
 * when it gives one); only a complete download is renamed to its model folder, in one rename, so a half
 * download never looks like a model. On failure the temporary folder is removed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { HfReference } from '@image-api/shared/hf-reference';

/** Progress of a download: bytes received so far over all files, and the total when known. */
export interface DownloadProgress {
  bytes: number;
  /** Sum of the files' sizes when the manifest (or every Content-Length) gave them; null until then. */
  total: number | null;
}

export interface HfDownloadOptions {
  /** e.g. https://huggingface.co (no trailing slash). */
  endpoint: string;
  /** Bearer token for gated/private repositories. */
  token?: string;
  /** Called as bytes arrive (at most every ~100 ms, and once per finished file). */
  onProgress?: (p: DownloadProgress) => void;
  /** Aborts the download (the temporary folder is removed). */
  signal?: AbortSignal;
}

interface ManifestEntry {
  path: string;
  size?: number;
  optional?: boolean;
}

const PIPELINE_FOLDERS = ['scheduler', 'tokenizer', 'tokenizer_2', 'text_encoder', 'text_encoder_2', 'unet', 'vae_decoder', 'vae_encoder'];
const PIPELINE_FILE = /\.(json|txt|onnx|onnx_data|pb)$|_data$/;

/** The diffusers ONNX layout, for endpoints without the tree API. */
const FIXED_LAYOUT: ManifestEntry[] = [
  { path: 'model_index.json' },
  { path: 'scheduler/scheduler_config.json' },
  { path: 'tokenizer/vocab.json' },
  { path: 'tokenizer/merges.txt' },
  { path: 'tokenizer/special_tokens_map.json', optional: true },
  { path: 'tokenizer/tokenizer_config.json', optional: true },
  { path: 'text_encoder/model.onnx' },
  { path: 'text_encoder/model.onnx_data', optional: true },
  { path: 'text_encoder/config.json', optional: true },
  { path: 'unet/model.onnx' },
  { path: 'unet/model.onnx_data', optional: true },
  { path: 'unet/weights.pb', optional: true },
  { path: 'unet/config.json', optional: true },
  { path: 'vae_decoder/model.onnx' },
  { path: 'vae_decoder/model.onnx_data', optional: true },
  { path: 'vae_decoder/config.json', optional: true },
  { path: 'vae_encoder/model.onnx', optional: true },
  { path: 'vae_encoder/model.onnx_data', optional: true },
  { path: 'vae_encoder/config.json', optional: true },
];

/** Whether a repository path belongs to the diffusers ONNX pipeline layout. */
export function isPipelineFile(path: string): boolean {
  if (path === 'model_index.json') return true;
  const [folder, ...rest] = path.split('/');
  return PIPELINE_FOLDERS.includes(folder) && rest.length >= 1 && PIPELINE_FILE.test(path);
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

function nextLink(header: string | null): string | undefined {
  return header?.split(',').map((p) => /<([^>]+)>\s*;\s*rel="?next"?/.exec(p)?.[1]).find(Boolean);
}

async function fetchManifest(ref: HfReference, opts: HfDownloadOptions, headers: Record<string, string>): Promise<ManifestEntry[]> {
  if (ref.file) return [{ path: ref.file }];
  let url: string | undefined = `${opts.endpoint}/api/models/${ref.repo}/tree/${encodeURIComponent(ref.revision)}?recursive=true`;
  const entries: ManifestEntry[] = [];
  while (url) {
    const res = await fetch(url, { headers, signal: opts.signal });
    if (res.status === 404 && entries.length === 0) {
      await res.body?.cancel();
      return FIXED_LAYOUT;
    }
    if (!res.ok) throw new Error(`listing ${ref.repo}@${ref.revision}: HTTP ${res.status}`);
    const page = (await res.json()) as Array<{ type?: string; path?: string; size?: number; lfs?: { size?: number } }>;
    if (!Array.isArray(page)) throw new Error(`listing ${ref.repo}@${ref.revision}: the tree API did not answer a JSON array`);
    for (const e of page) {
      if (e.type === 'file' && typeof e.path === 'string' && isPipelineFile(e.path)) {
        entries.push({ path: e.path, size: typeof e.lfs?.size === 'number' ? e.lfs.size : e.size });
      }
    }
    const next = nextLink(res.headers.get('link'));
    url = next ? new URL(next, url).toString() : undefined;
  }
  if (!entries.some((e) => e.path === 'model_index.json')) {
    throw new Error(`${ref.repo}@${ref.revision} is not a diffusers ONNX pipeline (no model_index.json)`);
  }
  return entries;
}

/**
 * Download `ref` into `modelsDir/<ref.folderName>` (see the module docstring).
 * @returns the model folder (absolute). When the folder already exists nothing is fetched.
 * @throws Error naming the file and the HTTP status, the short read, or the abort reason.
 */
export async function downloadHfModel(ref: HfReference, modelsDir: string, opts: HfDownloadOptions): Promise<string> {
  const final = join(modelsDir, ref.folderName);
  if (await exists(final)) return final;
  await mkdir(modelsDir, { recursive: true });
  const temp = join(modelsDir, `.download-${ref.folderName}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'image-api-gpu-service' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  try {
    await mkdir(temp, { recursive: true });
    const manifest = await fetchManifest(ref, opts, headers);
    const known = manifest.every((e) => e.size !== undefined && !e.optional);
    const progress: DownloadProgress = { bytes: 0, total: known ? manifest.reduce((n, e) => n + (e.size ?? 0), 0) : null };
    let lastReport = 0;
    const report = (force: boolean) => {
      const now = Date.now();
      if (!force && now - lastReport < 100) return;
      lastReport = now;
      opts.onProgress?.({ ...progress });
    };
    report(true);
    for (const entry of manifest) {
      const url = `${opts.endpoint}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${encodePath(entry.path)}`;
      const res = await fetch(url, { headers, signal: opts.signal });
      if (res.status === 404 && entry.optional) {
        await res.body?.cancel();
        continue;
      }
      if (!res.ok || !res.body) {
        await res.body?.cancel();
        throw new Error(`GET ${entry.path}: HTTP ${res.status}${res.status === 401 || res.status === 403 ? ' (set HF_TOKEN for gated or private repositories)' : ''}`);
      }
      const lengthHeader = res.headers.get('content-length');
      const contentLength = lengthHeader !== null ? Number(lengthHeader) : undefined;
      if (contentLength !== undefined && entry.size !== undefined && contentLength !== entry.size) {
        await res.body.cancel();
        throw new Error(`${entry.path}: the server sends ${contentLength} bytes, the manifest says ${entry.size}`);
      }
      const expected = contentLength ?? entry.size;
      const target = join(temp, ref.file ? basename(entry.path) : entry.path);
      await mkdir(dirname(target), { recursive: true });
      const fh = await open(target, 'w');
      let got = 0;
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          await fh.write(chunk);
          got += chunk.byteLength;
          progress.bytes += chunk.byteLength;
          report(false);
        }
      } finally {
        await fh.close();
      }
      if (expected !== undefined && got !== expected) throw new Error(`${entry.path}: received ${got} of ${expected} bytes`);
      report(true);
    }
    if (progress.total === null) progress.total = progress.bytes;
    report(true);
    try {
      await rename(temp, final);
    } catch (err) {
      // Another download of the same model finished first: keep its folder.
      if (!(await exists(final))) throw err;
      await rm(temp, { recursive: true, force: true });
    }
    return final;
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
