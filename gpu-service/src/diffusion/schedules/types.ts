/**
 * The model's discrete noise table, built from scheduler/scheduler_config.json (docs/samplers.md §1.1).
 * `sigmas[t]` for t = 0..numTrainTimesteps−1, ascending, each rounded to float32 as ComfyUI does.
 */
export interface ModelSchedule {
  /** float64 copy of ᾱ_t (alphas_cumprod), length numTrainTimesteps. */
  alphasCumprod: Float64Array;
  /** sqrt((1 − ᾱ_t)/ᾱ_t) rounded through Math.fround, ascending, length numTrainTimesteps. */
  sigmas: Float64Array;
  sigmaMin: number;
  sigmaMax: number;
  numTrainTimesteps: number;
  /** 'flow': a flow-matching model's table (flow-schedule.ts): σ ∈ (0, 1], x_σ = (1 − σ)·x0 + σ·noise. */
  predictionType: 'epsilon' | 'v_prediction' | 'flow';
  /** scheduler_config.json `steps_offset`, recorded for diffusers-style timestep grids; the
   * k-diffusion style schedules of this folder do not use it (docs/samplers.md §3.3). */
  stepsOffset?: number;
  /** scheduler_config.json `timestep_spacing` ('leading' | 'trailing' | 'linspace'), recorded likewise. */
  timestepSpacing?: 'leading' | 'trailing' | 'linspace';
}

/** A schedule: pure function of (model schedule, steps) → N+1 sigmas, strictly decreasing, ending in 0
 * (exceptions documented per schedule). Throws RangeError for a step count it cannot serve. */
export type ScheduleFn = (model: ModelSchedule, steps: number) => Float64Array;
