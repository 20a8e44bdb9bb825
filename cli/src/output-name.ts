import { FORMAT_EXTENSIONS, type ImageFormat } from './image-format';
import { promptSlug } from './prompt-slug';

/**
 * The default file name for a generated image: `<prompt slug>-<seed><ext>`, e.g.
 * "red-apple-42.png" for "a red apple" with seed 42. The seed makes the name reproducible
 * (the same command with `--seed 42` gives the same picture). When the server did not say which
 * seed it used, a local timestamp `YYYYMMDD-HHMMSS` takes its place. Clashes with existing
 * files are resolved when writing (see writeUniqueFile). Pure; never throws.
 *
 * @param seed the seed the server reports for this image, or null when unknown
 * @param now  the clock, passed in so the function stays pure
 */
export function defaultOutputName(prompt: string, seed: number | string | null, format: ImageFormat, now: Date): string {
  const tag = typeof seed === 'string' || (seed !== null && Number.isFinite(seed)) ? String(seed) : timestamp(now);
  return `${promptSlug(prompt)}-${tag}${FORMAT_EXTENSIONS[format]}`;
}

function timestamp(now: Date): string {
  const pad = (value: number): string => String(value).padStart(2, '0');
  return (
    `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-` +
    `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`
  );
}
