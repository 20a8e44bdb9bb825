/**
 * The sampler registry: every canonical sampler id (shared/src/sampler-names.ts) → its pure sampling
 * function and the facts the pipeline needs (docs/samplers.md §3.1). Also re-exports the noise sources.
 *
 * Options: the job layer passes `{ ...entry.defaultOptions, ...job.sampler_options }`. Every sampler reads
 * its own defaults for missing keys (including missing variant keys), so a shallow merge is safe.
 */
import { CANONICAL_SAMPLER_IDS, type CanonicalSamplerId } from '@image-api/shared/sampler-names';
import { sampleDdpm } from './ddpm';
import { sampleDeis } from './deis';
import { sampleDpm2 } from './dpm-2';
import { sampleDpm2Ancestral } from './dpm-2-ancestral';
import { sampleDpmAdaptive, sampleDpmFast } from './dpm-solver';
import { sampleDpmpp2m, sampleDpmpp2mV2 } from './dpmpp-2m';
import { sampleDpmpp2mSde } from './dpmpp-2m-sde';
import { sampleDpmpp2sAncestral } from './dpmpp-2s-ancestral';
import { sampleDpmpp3mSde } from './dpmpp-3m-sde';
import { sampleDpmppSde } from './dpmpp-sde';
import { sampleEuler } from './euler';
import { sampleEulerAncestral } from './euler-ancestral';
import { sampleEulerAncestralCfgPp, sampleEulerCfgPp } from './euler-cfg-pp';
import { sampleHeun } from './heun';
import { sampleHeunpp2 } from './heunpp2';
import { sampleIpndm, sampleIpndmV } from './ipndm';
import { sampleLcm } from './lcm';
import { sampleLms } from './lms';
import { samplePlms } from './plms';
import type { Sampler, SamplerOptions } from './types';
import { sampleUniPc, sampleUniPcBh2 } from './uni-pc';

export { createIidNoise } from './iid-noise';
export { createBrownianTreeNoise, type BrownianTreeNoiseOptions } from './brownian-tree-noise';
export type { CanonicalSamplerId } from '@image-api/shared/sampler-names';

/** What the pipeline needs to know about one sampler. */
export interface SamplerEntry {
  /** The canonical id (the registry key). */
  id: string;
  sample: Sampler;
  /** True when the sampler draws noise with its default options (it still may with eta > 0 when it reads eta). */
  stochastic: boolean;
  /** Noise source to build by default: per-image i.i.d. generators, or a per-image seeded Brownian tree. */
  defaultNoise: 'iid' | 'brownian';
  /** True when it needs the denoiser's unconditional estimate (CFG++; falls back to the guided one). */
  usesUncond: boolean;
  /** Options this id implies (η, variant flags); job options override them key by key. */
  defaultOptions: SamplerOptions;
}

type EntrySpec = Omit<SamplerEntry, 'id'>;

const deterministic = (sample: Sampler, defaultOptions: SamplerOptions = {}): EntrySpec => ({
  sample,
  stochastic: false,
  defaultNoise: 'iid',
  usesUncond: false,
  defaultOptions,
});
const ancestral = (sample: Sampler, defaultOptions: SamplerOptions = { eta: 1 }): EntrySpec => ({
  sample,
  stochastic: true,
  defaultNoise: 'iid',
  usesUncond: false,
  defaultOptions,
});
const sde = (sample: Sampler, defaultOptions: SamplerOptions = { eta: 1 }): EntrySpec => ({
  sample,
  stochastic: true,
  defaultNoise: 'brownian',
  usesUncond: false,
  defaultOptions,
});

const SPECS: Record<CanonicalSamplerId, EntrySpec> = {
  euler: deterministic(sampleEuler),
  ddim: deterministic(sampleEuler),
  heun: deterministic(sampleHeun),
  heunpp2: deterministic(sampleHeunpp2),
  dpm_2: deterministic(sampleDpm2),
  lms: deterministic(sampleLms, { variant: { final: 'denoise' } }),
  ipndm: deterministic(sampleIpndm, { variant: { final: 'denoise' } }),
  ipndm_v: deterministic(sampleIpndmV, { variant: { flavor: 'comfy' } }),
  deis: deterministic(sampleDeis),
  plms: deterministic(samplePlms),
  dpmpp_2m: deterministic(sampleDpmpp2m),
  dpmpp_2m_v2: deterministic(sampleDpmpp2mV2),
  uni_pc: deterministic(sampleUniPc, { variant: { variant: 'bh1' } }),
  uni_pc_bh2: deterministic(sampleUniPcBh2, { variant: { variant: 'bh2' } }),
  dpm_fast: deterministic(sampleDpmFast, { eta: 0 }),
  dpm_adaptive: deterministic(sampleDpmAdaptive, { eta: 0 }),
  euler_cfg_pp: { ...deterministic(sampleEulerCfgPp), usesUncond: true },
  euler_ancestral: ancestral(sampleEulerAncestral),
  euler_ancestral_cfg_pp: { ...ancestral(sampleEulerAncestralCfgPp), usesUncond: true },
  dpm_2_ancestral: ancestral(sampleDpm2Ancestral),
  dpmpp_2s_ancestral: ancestral(sampleDpmpp2sAncestral),
  ddpm: ancestral(sampleDdpm, {}),
  lcm: ancestral(sampleLcm, {}),
  dpmpp_sde: sde(sampleDpmppSde),
  dpmpp_2m_sde: sde(sampleDpmpp2mSde, { eta: 1, variant: { solver_type: 'midpoint' } }),
  dpmpp_3m_sde: sde(sampleDpmpp3mSde),
};

/** Every canonical sampler, by id. Entries are frozen. */
export const samplers: Record<CanonicalSamplerId, SamplerEntry> = Object.fromEntries(
  CANONICAL_SAMPLER_IDS.map((id) => [id, Object.freeze({ id, ...SPECS[id] })]),
) as Record<CanonicalSamplerId, SamplerEntry>;

/**
 * Look up a sampler by canonical id.
 * @throws RangeError naming the accepted ids for an unknown id.
 */
export function getSampler(id: string): SamplerEntry {
  if (Object.prototype.hasOwnProperty.call(samplers, id)) return samplers[id as CanonicalSamplerId];
  throw new RangeError(`Unknown sampler '${id}'. Accepted: ${CANONICAL_SAMPLER_IDS.join(', ')}.`);
}

/**
 * Whether a sampler will draw noise with these (merged) options: ancestral/SDE samplers unless eta = 0
 * (ddpm and lcm always), dpm_fast/dpm_adaptive when eta > 0, and never when s_noise = 0.
 */
export function isStochastic(id: CanonicalSamplerId, options: SamplerOptions): boolean {
  if (options.s_noise === 0) return false;
  if (id === 'ddpm' || id === 'lcm') return true;
  const entry = samplers[id];
  const readsEta = entry.stochastic || id === 'dpm_fast' || id === 'dpm_adaptive';
  if (!readsEta) return false;
  const eta = options.eta ?? entry.defaultOptions.eta ?? (entry.stochastic ? 1 : 0);
  return eta > 0;
}
