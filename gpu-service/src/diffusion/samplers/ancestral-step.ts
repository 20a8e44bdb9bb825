/**
 * The ancestral split of one step σ → σ' with noise fraction η (docs/samplers.md §0.1; k-diffusion
 * `get_ancestral_step`, after Ho et al. 2020 / Karras et al. 2022):
 *   σ_up   = min(σ', η·sqrt(σ'²(σ² − σ'²)/σ²)),   σ_down = sqrt(σ'² − σ_up²).
 * The deterministic part of the step goes to σ_down, then s_noise·σ_up·n is added.
 */
export interface AncestralStep {
  sigmaDown: number;
  sigmaUp: number;
}

/**
 * Split σ → σ' (both ≥ 0, σ > 0) for noise fraction eta ≥ 0. eta = 0 returns exactly (σ', 0);
 * σ' = 0 returns (0, 0).
 */
export function ancestralStep(sigma: number, sigmaNext: number, eta: number): AncestralStep {
  if (eta === 0 || sigmaNext === 0) return { sigmaDown: sigmaNext, sigmaUp: 0 };
  const sigmaUp = Math.min(
    sigmaNext,
    eta * Math.sqrt((sigmaNext * sigmaNext * (sigma * sigma - sigmaNext * sigmaNext)) / (sigma * sigma)),
  );
  const sigmaDown = Math.sqrt(Math.max(0, sigmaNext * sigmaNext - sigmaUp * sigmaUp));
  return { sigmaDown, sigmaUp };
}
