/**
 * Noise schedules (docs/samplers.md §1): the model's discrete σ table, σ ↔ timestep maps, every
 * schedule family as a pure ScheduleFn, the registry by canonical id, and buildSigmas for jobs.
 */
export type { ModelSchedule, ScheduleFn } from './types';
export { modelScheduleFromConfig, SchedulerConfigSchema, SD15_SCHEDULER_CONFIG, sigmaToTimestep, timestepToSigma } from './model-schedule';
export type { SchedulerConfig } from './model-schedule';
export { schedules, SCHEDULE_IDS, getSchedule } from './registry';
export { buildSigmas } from './build-sigmas';
export type { BuildSigmasOptions } from './build-sigmas';
export { MAX_SCHEDULE_STEPS } from './steps';
export { createKarrasSchedule, KARRAS_RHO } from './karras';
export { createPolyexponentialSchedule } from './polyexponential';
export { createBetaSchedule } from './beta';
export { AYS_SD15_LEVELS, AYS_SDXL_LEVELS } from './ays';
export { GITS_LEVELS_1_20 } from './gits';
