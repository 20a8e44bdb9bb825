/** Largest step count a schedule accepts (jobs are capped far lower; this only bounds memory). */
export const MAX_SCHEDULE_STEPS = 10_000;

/**
 * Checks a requested step count.
 * @param schedule schedule id, for the message
 * @param steps requested number of sampling steps
 * @param min smallest count the schedule can serve (1 for most, 2 for gits)
 * @throws RangeError when steps is not an integer in [min, MAX_SCHEDULE_STEPS]
 */
export function assertSteps(schedule: string, steps: number, min = 1): void {
  if (!Number.isInteger(steps) || steps < min || steps > MAX_SCHEDULE_STEPS) {
    throw new RangeError(`schedule "${schedule}" needs an integer step count in [${min}, ${MAX_SCHEDULE_STEPS}], got ${steps}`);
  }
}
