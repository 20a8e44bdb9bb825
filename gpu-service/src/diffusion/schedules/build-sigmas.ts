import { getSchedule } from './registry';
import type { ModelSchedule } from './types';

/** Options of {@link buildSigmas}. */
export interface BuildSigmasOptions {
  /** docs/samplers.md §1.3: build for steps+1 and remove the entry just before the last (default false). */
  discardPenultimate?: boolean;
  /** img2img strength in (0, 1] (default 1): keep only the tail of a longer schedule (§1.4). */
  denoise?: number;
}

/**
 * The sigmas a sampler runs over for a job: schedule `scheduleId` for `steps` steps, with the two
 * job-level rules of docs/samplers.md, in ComfyUI KSampler's order:
 * 1. denoise < 1 (img2img, §1.4, ComfyUI rule): build for `⌊steps/denoise⌋` steps and keep the last
 *    `steps + 1` entries, so the run starts part-way down the full schedule. (A1111 instead builds
 *    `steps` and starts at index `steps − t_enc − 1`; not reproduced.)
 * 2. discardPenultimate (§1.3, A1111 DPM2 family and ComfyUI dpm_2 / dpm_2_ancestral / uni_pc /
 *    uni_pc_bh2): build for one step more and delete entry L−2 of the resulting list of length L;
 *    the list shrinks by exactly one (ddim_uniform may still be longer than steps+1, beta shorter,
 *    and that is kept). Applied to the full schedule before the denoise tail is taken.
 * @param model the model's noise table
 * @param scheduleId canonical schedule id (see SCHEDULE_IDS)
 * @param steps number of steps, integer ≥ 1
 * @param options discardPenultimate, denoise
 * @returns a fresh float64 array of sigmas (float32-representable values), descending
 * @throws RangeError for an unknown schedule id, a bad step count, or denoise outside (0, 1]
 */
export function buildSigmas(model: ModelSchedule, scheduleId: string, steps: number, options: BuildSigmasOptions = {}): Float64Array {
  const schedule = getSchedule(scheduleId);
  const denoise = options.denoise ?? 1;
  if (!(denoise > 0 && denoise <= 1)) throw new RangeError(`denoise must be in (0, 1], got ${denoise}`);
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be an integer ≥ 1, got ${steps}`);
  const totalSteps = denoise < 1 ? Math.floor(steps / denoise) : steps;
  let sigmas: Float64Array;
  if (options.discardPenultimate) {
    const longer = schedule(model, totalSteps + 1);
    const L = longer.length;
    if (L < 2) return longer.slice();
    sigmas = new Float64Array(L - 1);
    sigmas.set(longer.subarray(0, L - 2));
    sigmas[L - 2] = longer[L - 1];
  } else {
    sigmas = schedule(model, totalSteps);
  }
  if (denoise < 1) sigmas = sigmas.slice(Math.max(sigmas.length - (steps + 1), 0));
  return sigmas;
}
