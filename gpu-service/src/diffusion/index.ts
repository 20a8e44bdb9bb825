/**
 * The diffusion engine's public surface: every sampler and schedule by canonical name, the seeded noise
 * generators, and the pipeline. Samplers and schedules are pure functions (docs/samplers.md); nothing here
 * holds global state.
 */
export { samplers, getSampler, createIidNoise, createBrownianTreeNoise } from './samplers';
export { schedules, getSchedule, buildSigmas, modelScheduleFromConfig, sigmaToTimestep, timestepToSigma } from './schedules';
export { createNormalGenerator } from './rng';
export { generate, JobInputError } from './pipelines/generate';
export type { Sampler, Denoiser, NoiseSource, SamplerOptions, StepInfo } from './samplers/types';
export type { ModelSchedule, ScheduleFn } from './schedules/types';
export type { Tensor } from './tensor';
