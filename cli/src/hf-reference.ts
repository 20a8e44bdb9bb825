/**
 * Ollama-style Hugging Face model references (README "Public API"):
 * `hf.co/<org>/<repo>[:<tag or file>]`, e.g. `hf.co/gpustack/stable-diffusion-v3-5-large-turbo-GGUF:FP16`.
 * The CLI only checks the form (with the one parser the edge and the GPU service use) and sends the
 * reference unchanged as `model`; the GPU service resolves and downloads it: the tag rule (a GGUF repository's
 * `:<QUANT>` or `:<file>.gguf`, no tag = the `Q4_0` file; other repositories' `:<revision>`) and the download
 * allowlist and size limits are applied there, so the CLI, every API style and the playground share them.
 */
import { isHfReference, parseHfReference as parseShared, type HfReference } from '@image-api/shared/hf-reference';

export type { HfReference };

/** True when `model` is meant as a Hugging Face reference (starts with "hf.co/", any case). */
export const looksLikeHfReference = isHfReference;

/** The parsed reference, or null when `model` is not a well-formed `hf.co/<org>/<repo>[:<tag or file>]`. */
export function parseHfReference(model: string): HfReference | null {
  try {
    return parseShared(model);
  } catch {
    return null;
  }
}
