/**
 * The deployment's default base model per architecture family (README "Transformer-only and encoder-less files"):
 * a UNet / transformer-only file (or an SD 3.x file without its text encoders) whose sidecar names no `base`
 * takes what it lacks from the model id in `DEFAULT_BASE_<FAMILY>`. A sidecar `base` always wins.
 */
import type { ModelFamily } from './detect/family';

/** The environment variable of each family that can have a default base. */
export const DEFAULT_BASE_ENV: Readonly<Partial<Record<ModelFamily, string>>> = {
  sd1: 'DEFAULT_BASE_SD1',
  sd2: 'DEFAULT_BASE_SD2',
  sdxl: 'DEFAULT_BASE_SDXL',
  flux: 'DEFAULT_BASE_FLUX',
  sd3: 'DEFAULT_BASE_SD3',
};

/** Model ids by family (ids under MODELS_DIR/checkpoints, as GET /v1/models lists them). */
export type DefaultBases = Partial<Record<ModelFamily, string>>;

/**
 * Read DEFAULT_BASE_SD1 / _SD2 / _SDXL / _FLUX / _SD3 (unset or blank = no default for that family).
 * @throws Error naming the variable when a value has a leading/trailing slash or a `..` segment (not a model id).
 */
export function loadDefaultBases(env: NodeJS.ProcessEnv): DefaultBases {
  const out: DefaultBases = {};
  for (const [family, name] of Object.entries(DEFAULT_BASE_ENV) as [ModelFamily, string][]) {
    const value = env[name]?.trim();
    if (!value) continue;
    if (value.startsWith('/') || value.endsWith('/') || value.split('/').includes('..')) {
      throw new Error(`${name} must be a model id under MODELS_DIR/checkpoints (e.g. "flux/FLUX.1-schnell"), got "${value}"`);
    }
    out[family] = value;
  }
  return out;
}

/** The words for what a file lacks and how to fix it, for "no base" errors: the sidecar, or the family's variable. */
export function baseFixHint(family: ModelFamily): string {
  const env = DEFAULT_BASE_ENV[family];
  return `a sidecar {"base": "<model id>"}${env ? ` or the deployment's ${env}` : ''}`;
}
