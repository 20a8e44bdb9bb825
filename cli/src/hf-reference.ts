/**
 * Ollama-style Hugging Face model references (api-styles.md §4, seed draw-cli.md):
 * `hf.co/<org>/<repo>[:<tag or file>]`, e.g. `hf.co/gpustack/stable-diffusion-v3-5-large-turbo-GGUF:FP16`.
 * The CLI sends them unchanged as `model`; the GPU service resolves and downloads them.
 */
const HF_REFERENCE = /^hf\.co\/([A-Za-z0-9][\w.-]*)\/([A-Za-z0-9][\w.-]*)(?::([\w.+-]+))?$/;

/** A parsed reference; `tag` is null when the server's default (Q4_0 in the seed doc) applies. */
export interface HfReference {
  org: string;
  repo: string;
  tag: string | null;
}

/** True when `model` is meant as a Hugging Face reference (starts with "hf.co/"). */
export function looksLikeHfReference(model: string): boolean {
  return model.toLowerCase().startsWith('hf.co/');
}

/**
 * Parse `hf.co/<org>/<repo>[:<tag>]`; returns null when `model` is not a well-formed reference
 * (wrong prefix, missing repo, empty tag, spaces or other characters Hugging Face does not allow).
 */
export function parseHfReference(model: string): HfReference | null {
  const match = HF_REFERENCE.exec(model);
  if (!match) return null;
  return { org: match[1]!, repo: match[2]!, tag: match[3] ?? null };
}
