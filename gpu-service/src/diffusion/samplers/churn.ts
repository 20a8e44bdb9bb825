/**
 * Karras et al. 2022 ("Elucidating the Design Space…", Algorithm 2) stochastic churn for euler, heun and
 * dpm_2 (docs/samplers.md §0.2; k-diffusion sample_euler/sample_heun/sample_dpm_2).
 * γ = min(s_churn/N, √2 − 1) when s_tmin ≤ σ ≤ s_tmax, else 0; σ̂ = σ(1 + γ); if γ > 0 the iterate gets
 * s_noise·sqrt(σ̂² − σ²)·n with n from options.randn (never from the noise source).
 */
import type { Tensor } from '../tensor';
import { addScaled } from './tensor-ops';
import type { SamplerOptions } from './types';

export interface ChurnResult {
  x: Tensor;
  sigmaHat: number;
}

/**
 * Apply churn to x at sigma for a schedule of `steps` steps. Returns x itself when γ = 0 (the default,
 * s_churn = 0).
 * @throws Error when churn is active but options.randn is missing, RangeError if randn has the wrong length.
 */
export function applyChurn(x: Tensor, sigma: number, steps: number, options: SamplerOptions): ChurnResult {
  const sChurn = options.s_churn ?? 0;
  const sTmin = options.s_tmin ?? 0;
  const sTmax = options.s_tmax ?? Infinity;
  const sNoise = options.s_noise ?? 1;
  const gamma = sChurn > 0 && sTmin <= sigma && sigma <= sTmax ? Math.min(sChurn / steps, Math.SQRT2 - 1) : 0;
  if (!(gamma > 0)) return { x, sigmaHat: sigma };
  const sigmaHat = sigma * (gamma + 1);
  if (!options.randn) throw new Error('s_churn > 0 needs options.randn (a source of fresh standard normals)');
  const n = options.randn();
  if (n.length !== x.length) throw new RangeError(`randn returned ${n.length} values for ${x.length}`);
  const scale = sNoise * Math.sqrt(sigmaHat * sigmaHat - sigma * sigma);
  return { x: scale === 0 ? x : addScaled(x, scale, n), sigmaHat };
}
