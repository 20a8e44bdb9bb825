/**
 * Download a model from a Hugging Face endpoint (HF_ENDPOINT) into MODELS_DIR, atomically, in two steps:
 * {@link planHfDownload} reads the repository's file listing and decides which files (and how many bytes)
 * a reference means, so size limits (hf-policy.ts) are checked before anything is fetched;
 * {@link downloadHfModel} fetches them.
 *
 * Layout (the Hugging Face Hub's): files are fetched from `<endpoint>/<org>/<repo>/resolve/<revision>/<path>`.
 * Which files: the Hub's tree API `<endpoint>/api/models/<org>/<repo>/tree/<revision>?recursive=true`
 * (a JSON array of `{ type: 'file' | 'directory', path, size, lfs?: { size } }`, paginated with a
 * `Link: <…>; rel="next"` header). The listing decides what the repository is:
 * - GGUF (`.gguf` files and no model_index.json): the tag rule of issue 15 picks one file — no tag: the
 *   `Q4_0` file; `:<QUANT>` (FP16, F16, BF16, F32, Q8_0, Q4_K_M, …, case-insensitive): the file whose name
 *   carries that quantization; `:<file>.gguf`: that file. None or several matching: an
 *   {@link HfReferenceError} listing the repository's GGUF files. The tag is not a git revision (`main`). A
 *   `<stem>.json` sidecar beside the chosen file is fetched with it. The download is a folder holding that one
 *   file, which the registry runs as a checkpoint (model-folder.ts singleCheckpointFile); a transformer- or
 *   UNet-only file takes its encoders and VAE from its sidecar's `base` or the DEFAULT_BASE_<FAMILY> default.
 * - a diffusers ONNX pipeline (model_index.json and .onnx files): model_index.json and the
 *   .json/.txt/.onnx/.onnx_data/.pb files of scheduler/, tokenizer(_2)/, text_encoder(_2)/, unet/,
 *   vae_decoder/, vae_encoder/;
 * - a diffusers folder of safetensors (model_index.json, no .onnx): model_index.json and, per component
 *   folder (unet/, transformer/, vae/, text_encoder(_2,_3)/, tokenizer(_2,_3)/, scheduler/), its .json/.txt/
 *   .model files and one set of safetensors weights (the plain ones, else the fp16 variant; shards included),
 *   never .bin/.ckpt/.msgpack/.onnx duplicates;
 * - a single-file safetensors checkpoint (no model_index.json): the one top-level `.safetensors` file
 *   (several: an {@link HfReferenceError} listing them, pick one with `:<file>.safetensors`).
 * For all but GGUF a `:<tag>` is the git revision. When the endpoint has no tree API (404, e.g. a plain
 * file mirror), a fixed list of the ONNX layout's files is fetched instead (the optional ones may be
 * missing; sizes unknown, so limits apply while bytes arrive). A `:<file>` reference fetches that one file.
 *
 * Safety: everything goes into a hidden temporary folder `.download-*` inside MODELS_DIR (hidden folders
 * are never listed as models); every file's byte count must equal its Content-Length (and the listing's
 * size when it gives one); the bytes received may never pass `maxBytes`; only a complete download is renamed
 * to its model folder, in one rename, so a half download never looks like a model. On failure the temporary
 * folder is removed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
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
  /** Bearer token for gated/private repositories (the caller sends it only for allowed repositories). */
  token?: string;
  /** Called as bytes arrive (at most every ~100 ms, and once per finished file). */
  onProgress?: (p: DownloadProgress) => void;
  /** Aborts the download (the temporary folder is removed). */
  signal?: AbortSignal;
  /** Most bytes the download may receive in all (absent = no cap); more: {@link HfLimitError}. */
  maxBytes?: number;
}

/** One file of a plan: its path in the repository and, when the listing gave it, its size in bytes. */
export interface ManifestEntry {
  path: string;
  size?: number;
  optional?: boolean;
}

/** What a reference downloads: the revision, the files, and their total size (null when unknown). */
export interface HfDownloadPlan {
  ref: HfReference;
  /** The git revision the files are fetched at (`main` for a GGUF tag). */
  revision: string;
  files: ManifestEntry[];
  /** Sum of the files' sizes; null when a size is unknown (no tree API). */
  totalBytes: number | null;
  /** Files are stored under their base name (one-file downloads) rather than their repository path. */
  flatten: boolean;
  /** What the listing said the repository is. */
  layout: 'gguf' | 'onnx' | 'diffusers' | 'single-file' | 'file' | 'fixed';
}

/** The reference names nothing the repository offers (a caller's error: 400 on `model`). */
export class HfReferenceError extends Error {
  /** The files the repository offers for this kind of reference. */
  constructor(
    message: string,
    readonly available: string[],
  ) {
    super(message);
  }
}

/** A download would pass a size limit (a caller's error: 413 on `model`). */
export class HfLimitError extends Error {}

const PIPELINE_FOLDERS = ['scheduler', 'tokenizer', 'tokenizer_2', 'text_encoder', 'text_encoder_2', 'unet', 'vae_decoder', 'vae_encoder'];
const PIPELINE_FILE = /\.(json|txt|onnx|onnx_data|pb)$|_data$/;
/** Component folders of a diffusers pipeline stored as safetensors (diffusers' DiffusionPipeline layout). */
const DIFFUSERS_FOLDERS = ['scheduler', 'tokenizer', 'tokenizer_2', 'tokenizer_3', 'text_encoder', 'text_encoder_2', 'text_encoder_3', 'unet', 'transformer', 'vae'];
const DIFFUSERS_SIDE_FILE = /\.(json|txt|model)$/;

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

/**
 * The GGUF file a tag names (issue 15's tag rule), from the repository's `.gguf` paths.
 * @param tag undefined (no tag: `Q4_0`), a quantization name (case-insensitive; `FP16` also matches `F16`
 *   and the reverse), or a file name ending in `.gguf` (matched against the path or its base name).
 * @returns the one matching path.
 * @throws HfReferenceError when no file or several match, listing the GGUF files.
 */
export function pickGgufFile(paths: readonly string[], tag: string | undefined): string {
  const ggufs = paths.filter((p) => p.toLowerCase().endsWith('.gguf')).sort();
  let matches: string[];
  let what: string;
  if (tag && tag.toLowerCase().endsWith('.gguf')) {
    const t = tag.toLowerCase();
    matches = ggufs.filter((p) => p.toLowerCase() === t || basename(p).toLowerCase() === t);
    what = `the file "${tag}"`;
  } else {
    const quant = (tag ?? 'Q4_0').toUpperCase();
    const names = quant === 'FP16' || quant === 'F16' ? ['FP16', 'F16'] : quant === 'FP32' || quant === 'F32' ? ['FP32', 'F32'] : [quant];
    // The quantization is a whole "word" of the file name: Q4_0 must not match Q4_0_4_4, Q4_K not Q4_K_M.
    const carries = (p: string) => {
      const stem = basename(p).replace(/\.gguf$/i, '').toUpperCase();
      return names.some((n) => new RegExp(`(^|[-._])${n.replace(/[.+]/g, '\\$&')}($|[-.])`).test(stem));
    };
    matches = ggufs.filter(carries);
    what = tag ? `the quantization "${tag}"` : 'no tag (the Q4_0 file)';
  }
  if (matches.length === 1) return matches[0];
  const offered = ggufs.length ? ggufs.join(', ') : '(none)';
  const why = matches.length === 0 ? `no file of the repository matches ${what}` : `${matches.length} files match ${what}: ${matches.join(', ')}`;
  throw new HfReferenceError(`${why}; the repository offers ${offered} (name one as :<QUANT> or :<file>.gguf)`, ggufs);
}

/** Weights of one diffusers component folder: the plain safetensors set, else the fp16 variant. */
function componentWeights(files: ManifestEntry[]): ManifestEntry[] {
  const st = files.filter((f) => f.path.endsWith('.safetensors'));
  const variant = (f: ManifestEntry) => /\.[a-z0-9]+\.safetensors$/i.test(basename(f.path)) && !/-of-\d+\.safetensors$/.test(f.path);
  const plain = st.filter((f) => !variant(f));
  if (plain.length) return plain;
  const fp16 = st.filter((f) => /\.fp16\.safetensors$/i.test(f.path) || /\.fp16-\d+-of-\d+\.safetensors$/i.test(f.path));
  return fp16.length ? fp16 : st;
}

function diffusersFiles(files: ManifestEntry[]): ManifestEntry[] {
  const out: ManifestEntry[] = files.filter((f) => f.path === 'model_index.json');
  for (const folder of DIFFUSERS_FOLDERS) {
    const inFolder = files.filter((f) => f.path.startsWith(`${folder}/`) && f.path.split('/').length === 2);
    const side = inFolder.filter((f) => DIFFUSERS_SIDE_FILE.test(f.path));
    const weights = componentWeights(inFolder);
    // A shard index names the plain or the fp16 shards; keep the one that fits the weights chosen.
    const fp16 = weights.some((w) => /\.fp16[.-]/.test(basename(w.path)));
    out.push(...side.filter((f) => !f.path.endsWith('.safetensors.index.json') || /\.fp16\.safetensors\.index\.json$/.test(f.path) === fp16), ...weights);
  }
  return out;
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

function nextLink(header: string | null): string | undefined {
  return header?.split(',').map((p) => /<([^>]+)>\s*;\s*rel="?next"?/.exec(p)?.[1]).find(Boolean);
}

function requestHeaders(opts: Pick<HfDownloadOptions, 'token'>): Record<string, string> {
  const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'image-api-gpu-service' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  return headers;
}

/** Every file of the repository at `revision` (the tree API), or null when the endpoint has none (404). */
async function listRepository(repo: string, revision: string, opts: Pick<HfDownloadOptions, 'endpoint' | 'token' | 'signal'>): Promise<ManifestEntry[] | null> {
  const headers = requestHeaders(opts);
  let url: string | undefined = `${opts.endpoint}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
  const entries: ManifestEntry[] = [];
  let first = true;
  while (url) {
    const res = await fetch(url, { headers, signal: opts.signal });
    if (res.status === 404 && first) {
      await res.body?.cancel();
      return null;
    }
    first = false;
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`listing ${repo}@${revision}: HTTP ${res.status}`);
    }
    const page = (await res.json()) as Array<{ type?: string; path?: string; size?: number; lfs?: { size?: number } }>;
    if (!Array.isArray(page)) throw new Error(`listing ${repo}@${revision}: the tree API did not answer a JSON array`);
    for (const e of page) {
      if (e.type === 'file' && typeof e.path === 'string') {
        entries.push({ path: e.path, size: typeof e.lfs?.size === 'number' ? e.lfs.size : e.size });
      }
    }
    const next = nextLink(res.headers.get('link'));
    url = next ? new URL(next, url).toString() : undefined;
  }
  return entries;
}

function plan(ref: HfReference, revision: string, files: ManifestEntry[], layout: HfDownloadPlan['layout'], flatten: boolean): HfDownloadPlan {
  const known = files.every((e) => e.size !== undefined && !e.optional);
  return { ref, revision, files, layout, flatten, totalBytes: known ? files.reduce((n, e) => n + (e.size ?? 0), 0) : null };
}

/**
 * Decide what `ref` downloads (see the module docstring), from the repository's listing.
 * @throws HfReferenceError when a tag or file names nothing (or several things) the repository offers;
 *   Error with the HTTP status when the listing fails, or when the repository is no layout this service runs.
 */
export async function planHfDownload(ref: HfReference, opts: Pick<HfDownloadOptions, 'endpoint' | 'token' | 'signal'>): Promise<HfDownloadPlan> {
  const main = await listRepository(ref.repo, 'main', opts);
  const isGguf = (files: ManifestEntry[]) => files.some((f) => f.path.toLowerCase().endsWith('.gguf')) && !files.some((f) => f.path === 'model_index.json');
  if (main && isGguf(main)) {
    // The tag rule: the suffix picks a file, it is not a revision.
    const written = ref.ref.replace(/^https?:\/\//i, '');
    const tag = ref.file ?? (written.includes(':') ? ref.revision : undefined);
    const path = pickGgufFile(main.map((f) => f.path), tag);
    // A sidecar beside the file (`<stem>.json`: component configs, a base) comes with it, as under MODELS_DIR/checkpoints.
    const sidecar = main.find((f) => f.path === path.replace(/\.gguf$/i, '.json'));
    return plan(ref, 'main', [main.find((f) => f.path === path)!, ...(sidecar ? [sidecar] : [])], 'gguf', true);
  }
  if (ref.file) {
    if (!main) return plan(ref, ref.revision, [{ path: ref.file }], 'file', true);
    const entry = main.find((f) => f.path === ref.file);
    if (!entry) {
      const offered = main.filter((f) => /\.(safetensors|onnx|pt|bin|ckpt|gguf)$/i.test(f.path)).map((f) => f.path);
      throw new HfReferenceError(`the repository has no file "${ref.file}"; it offers ${offered.join(', ') || '(none)'}`, offered);
    }
    return plan(ref, ref.revision, [entry], 'file', true);
  }
  const files = ref.revision === 'main' ? main : await listRepository(ref.repo, ref.revision, opts);
  if (!files) return plan(ref, ref.revision, FIXED_LAYOUT, 'fixed', false);
  const hasIndex = files.some((f) => f.path === 'model_index.json');
  const onnx = files.filter((f) => isPipelineFile(f.path));
  if (hasIndex && onnx.some((f) => /\.onnx$/.test(f.path))) return plan(ref, ref.revision, onnx, 'onnx', false);
  if (hasIndex && files.some((f) => f.path.endsWith('.safetensors'))) return plan(ref, ref.revision, diffusersFiles(files), 'diffusers', false);
  if (!hasIndex) {
    const singles = files.filter((f) => !f.path.includes('/') && /\.safetensors$/i.test(f.path));
    if (singles.length === 1) return plan(ref, ref.revision, singles, 'single-file', true);
    if (singles.length > 1) {
      const names = singles.map((f) => f.path).sort();
      throw new HfReferenceError(`the repository holds ${names.length} checkpoint files: ${names.join(', ')} (name one as :<file>.safetensors)`, names);
    }
  }
  throw new Error(`${ref.repo}@${ref.revision} is not a diffusers pipeline (ONNX or safetensors), a single-file safetensors checkpoint or a GGUF repository`);
}

/** Bytes of every file under `dir` (hidden folders, partial downloads and caches included); 0 when absent. */
export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += await folderBytes(path);
    else if (e.isFile()) total += (await stat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/**
 * Download a plan's files into `modelsDir/<ref.folderName>` (see the module docstring).
 * @returns the model folder (absolute). When the folder already exists nothing is fetched.
 * @throws Error naming the file and the HTTP status, the short read, or the abort reason; HfLimitError when
 *   more than `opts.maxBytes` arrive. The temporary folder is gone then.
 */
export async function downloadHfModel(p: HfDownloadPlan, modelsDir: string, opts: HfDownloadOptions): Promise<string> {
  const { ref } = p;
  const final = join(modelsDir, ref.folderName);
  if (await exists(final)) return final;
  await mkdir(modelsDir, { recursive: true });
  const temp = join(modelsDir, `.download-${ref.folderName}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const headers = requestHeaders(opts);
  try {
    await mkdir(temp, { recursive: true });
    const progress: DownloadProgress = { bytes: 0, total: p.totalBytes };
    let lastReport = 0;
    const report = (force: boolean) => {
      const now = Date.now();
      if (!force && now - lastReport < 100) return;
      lastReport = now;
      opts.onProgress?.({ ...progress });
    };
    report(true);
    for (const entry of p.files) {
      const url = `${opts.endpoint}/${ref.repo}/resolve/${encodeURIComponent(p.revision)}/${encodePath(entry.path)}`;
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
      if (opts.maxBytes !== undefined && contentLength !== undefined && progress.bytes + contentLength > opts.maxBytes) {
        await res.body.cancel();
        throw new HfLimitError(`${entry.path} would bring the download to ${progress.bytes + contentLength} bytes, over its limit of ${opts.maxBytes}`);
      }
      const expected = contentLength ?? entry.size;
      const target = join(temp, p.flatten ? basename(entry.path) : entry.path);
      await mkdir(dirname(target), { recursive: true });
      const fh = await open(target, 'w');
      let got = 0;
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          got += chunk.byteLength;
          progress.bytes += chunk.byteLength;
          if (opts.maxBytes !== undefined && progress.bytes > opts.maxBytes) {
            throw new HfLimitError(`${entry.path}: the download passed its limit of ${opts.maxBytes} bytes`);
          }
          await fh.write(chunk);
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
