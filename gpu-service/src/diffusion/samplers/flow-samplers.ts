/**
 * Which samplers and schedules apply to flow-matching models (FLUX.1, SD 3.x; docs/samplers.md §4).
 *
 * A flow model's noisy latents are x_σ = (1 − σ)·x0 + σ·noise, so along the probability-flow ODE
 * dx/dσ = noise − x0 = (x − x0)/σ: the same derivative d = (x − D(x, σ))/σ the k-diffusion ODE samplers step
 * with. Samplers built only on d and σ differences therefore integrate the flow ODE exactly as they integrate
 * the variance-exploding one (ComfyUI runs them unchanged on its CONST model sampling; euler is diffusers'
 * FlowMatchEulerDiscreteScheduler step x ← x + (σ_next − σ)·v).
 * Refused (400 naming `sampler`): samplers that add noise (ancestral, SDE, ddpm, lcm: their re-noising
 * x = x0 + σ·n is variance-exploding, a flow model needs (1 − σ)·x0 + σ·n), the exponential integrators written in
 * log σ for x = x0 + σ·ε (dpmpp_2m*, uni_pc*, dpm_fast, dpm_adaptive), the CFG++ samplers and the ᾱ-table
 * samplers (ddim, plms).
 * Refused schedules (400 naming `scheduler`): ays / ays_sdxl / gits, whose σ lists are SD 1.x / SDXL noise levels.
 */

/** Samplers valid for flow models, in the registry's canonical ids. */
export const FLOW_SAMPLER_IDS: readonly string[] = Object.freeze(['euler', 'heun', 'heunpp2', 'dpm_2', 'lms', 'ipndm', 'ipndm_v', 'deis']);

/** Schedules refused for flow models. */
export const FLOW_REFUSED_SCHEDULES: readonly string[] = Object.freeze(['ays', 'ays_sdxl', 'gits']);
