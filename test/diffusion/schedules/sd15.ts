import { modelScheduleFromConfig, SD15_SCHEDULER_CONFIG } from '../../../gpu-service/src/diffusion/schedules/model-schedule';

/** The SD1.5 model schedule every schedule test uses. */
export const SD15 = modelScheduleFromConfig(SD15_SCHEDULER_CONFIG);
