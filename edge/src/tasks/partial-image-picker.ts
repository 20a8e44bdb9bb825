/**
 * Which preview images of a job become OpenAI `image_generation.partial_image` events.
 *
 * - `limit` null (the request has no `partial_images`): every preview the GPU service sends
 *   (GPUStack's live preview; how many depends on `preview` and the service's preview interval).
 * - `limit` k in 0..3 (OpenAI's `partial_images`): at most k, spread over the run: the j-th
 *   (0-based) is the first preview at or after step total × (j + 1) / (k + 1), so k = 2 over 10
 *   steps sends the previews of steps ≥ 3.33 and ≥ 6.67 (early previews are mostly noise). When
 *   the total is not known yet, the first previews are taken.
 * Indices (`partial_image_index`) count from 0 in the order sent.
 */
export class PartialImagePicker {
  private sent = 0;

  constructor(private readonly limit: number | null) {}

  /**
   * Decide for a preview of `step` (1-based, null if unknown) out of `total` steps (null if unknown).
   * @returns the partial_image_index to send it with, or null to drop it.
   */
  take(step: number | null, total: number | null): number | null {
    if (this.limit !== null) {
      if (this.sent >= this.limit) return null;
      if (step !== null && total !== null && step < (total * (this.sent + 1)) / (this.limit + 1)) return null;
    }
    return this.sent++;
  }
}
