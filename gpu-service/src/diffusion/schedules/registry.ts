import { ays, aysSdxl } from './ays';
import { beta } from './beta';
import { ddimUniform } from './ddim-uniform';
import { exponential } from './exponential';
import { gits } from './gits';
import { karras } from './karras';
import { normal } from './normal';
import { normalNoFinalZero } from './normal-no-final-zero';
import { polyexponential } from './polyexponential';
import { sgmUniform } from './sgm-uniform';
import { simple } from './simple';
import type { ScheduleFn } from './types';

/**
 * Every schedule by canonical id (docs/samplers.md §1.2). Public aliases such as stable-diffusion.cpp's
 * `discrete` (= normal) are resolved by the name table in shared/, not here.
 */
export const schedules: Readonly<Record<string, ScheduleFn>> = Object.freeze({
  normal,
  karras,
  exponential,
  sgm_uniform: sgmUniform,
  simple,
  ddim_uniform: ddimUniform,
  beta,
  polyexponential,
  ays,
  ays_sdxl: aysSdxl,
  gits,
  normal_no_final_zero: normalNoFinalZero,
});

/** The accepted schedule ids, in registry order. */
export const SCHEDULE_IDS: readonly string[] = Object.freeze(Object.keys(schedules));

/**
 * The schedule for a canonical id.
 * @throws RangeError naming the id and listing the accepted ones
 */
export function getSchedule(id: string): ScheduleFn {
  const fn = Object.hasOwn(schedules, id) ? schedules[id] : undefined;
  if (!fn) throw new RangeError(`unknown schedule "${id}"; accepted: ${SCHEDULE_IDS.join(', ')}`);
  return fn;
}
