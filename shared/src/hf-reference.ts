/**
 * Hugging Face model references, Ollama style: `hf.co/<org>/<repo>[:<tag or file>]`
 * (`huggingface.co/...` is accepted too).
 * - no suffix: revision `main`, the whole diffusers ONNX layout;
 * - `:<tag>` (branch, tag or commit, e.g. `:onnx`, `:v1.0`): that revision;
 * - `:<file>` (a path ending in .safetensors, .onnx, .pt, .bin, .ckpt or .gguf, e.g. `:lora/style.safetensors`):
 *   that one file of revision `main` (a LoRA, VAE or embedding).
 * This parse is by form only. What a suffix means is decided by the GPU service from the repository's file
 * listing (gpu-service/src/models/hf-download.ts): for a GGUF repository the tag is no revision but picks a file
 * (no tag: the `Q4_0` file; `:<QUANT>` such as `:Q8_0` or `:FP16`; `:<file>.gguf`), and whether the repository
 * may be downloaded at all is the GPU host's HF_ALLOWED_REPOS (gpu-service/src/models/hf-policy.ts).
 * The local folder name is `<org>--<repo>`, plus `--<tag>` or `--<file stem>`, so the reference and the
 * folder map one to one and the folder name is a valid model id.
 */

/** A parsed `hf.co/...` reference. */
export interface HfReference {
  /** The reference as written. */
  ref: string;
  /** `<org>/<repo>`. */
  repo: string;
  revision: string;
  /** One file to fetch instead of the pipeline layout. */
  file?: string;
  /** The model folder name in MODELS_DIR. */
  folderName: string;
}

const PREFIX = /^(?:https?:\/\/)?(?:hf\.co|huggingface\.co)\//i;
const SEGMENT = /^[A-Za-z0-9][\w.-]*$/;
const FILE = /\.(safetensors|onnx|pt|bin|ckpt|gguf)$/i;

/** Whether `model` is written as a Hugging Face reference (hf.co/...). */
export function isHfReference(model: string): boolean {
  return PREFIX.test(model);
}

/**
 * Parse a reference.
 * @throws Error saying what is wrong (the caller turns it into a 400 on `model`).
 */
export function parseHfReference(model: string): HfReference {
  const rest = model.replace(PREFIX, '');
  const colon = rest.indexOf(':');
  const path = colon < 0 ? rest : rest.slice(0, colon);
  const suffix = colon < 0 ? '' : rest.slice(colon + 1);
  const parts = path.split('/');
  if (parts.length !== 2 || !parts.every((p) => SEGMENT.test(p))) throw new Error('expected hf.co/<org>/<repo>[:<tag or file>]');
  const repo = parts.join('/');
  const base = `${parts[0]}--${parts[1]}`;
  if (colon >= 0 && !suffix) throw new Error('empty tag after ":"');
  if (!suffix) return { ref: model, repo, revision: 'main', folderName: base };
  if (FILE.test(suffix)) {
    const segments = suffix.split('/');
    if (!segments.every((s) => SEGMENT.test(s))) throw new Error(`bad file path "${suffix}"`);
    const stem = segments.at(-1)!.replace(FILE, '');
    return { ref: model, repo, revision: 'main', file: suffix, folderName: `${base}--${stem}` };
  }
  if (!SEGMENT.test(suffix)) throw new Error(`bad tag "${suffix}"`);
  return { ref: model, repo, revision: suffix, folderName: `${base}--${suffix}` };
}
