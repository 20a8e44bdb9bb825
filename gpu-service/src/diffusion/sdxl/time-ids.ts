/**
 * SDXL micro-conditioning: the `time_ids` row of each image (diffusers `_get_add_time_ids`), in pixels:
 *   base (6):    [original_h, original_w, crop_top, crop_left, target_h, target_w]
 *   refiner (5): [original_h, original_w, crop_top, crop_left, aesthetic_score]
 * Defaults (diffusers): original = target = the generated size (height, width), crop (0, 0), aesthetic score 6.0
 * for the conditional row and 2.5 for the unconditional one. The base's unconditional row equals the
 * conditional one (no negative sizes are taken).
 */

/** What a job may set; every field optional. Sizes are [height, width] and crop [top, left], in pixels. */
export interface SdxlMicroConditioning {
  originalSize?: [number, number];
  cropTopLeft?: [number, number];
  targetSize?: [number, number];
  /** Refiner only. Default 6.0. */
  aestheticScore?: number;
  /** Refiner only. Default 2.5. */
  negativeAestheticScore?: number;
}

/** diffusers' defaults for the refiner's aesthetic scores. */
export const SDXL_AESTHETIC_SCORE = 6.0;
export const SDXL_NEGATIVE_AESTHETIC_SCORE = 2.5;

/**
 * The conditional and unconditional time-id rows of one image.
 * @param kind `base` (6 ids) or `refiner` (5 ids).
 * @param height, width the generated size in pixels (the defaults of original and target size).
 * @returns float32 [n] each.
 */
export function sdxlTimeIds(kind: 'base' | 'refiner', height: number, width: number, mc: SdxlMicroConditioning = {}): { cond: Float32Array; uncond: Float32Array } {
  const [oh, ow] = mc.originalSize ?? [height, width];
  const [ct, cl] = mc.cropTopLeft ?? [0, 0];
  if (kind === 'base') {
    const [th, tw] = mc.targetSize ?? [height, width];
    const row = Float32Array.from([oh, ow, ct, cl, th, tw]);
    return { cond: row, uncond: Float32Array.from(row) };
  }
  return {
    cond: Float32Array.from([oh, ow, ct, cl, mc.aestheticScore ?? SDXL_AESTHETIC_SCORE]),
    uncond: Float32Array.from([oh, ow, ct, cl, mc.negativeAestheticScore ?? SDXL_NEGATIVE_AESTHETIC_SCORE]),
  };
}

/** The SDXL added conditioning of a batch, as createCfgDenoiser takes it. */
export interface AddedConditioning {
  cond: { textEmbeds: Float32Array; timeIds: Float32Array };
  uncond: { textEmbeds: Float32Array; timeIds: Float32Array };
}

/**
 * Stack per-image pooled vectors and time ids for the UNet.
 * @param pooled per image: cond and uncond text_embeds float32 [P].
 * @returns text_embeds float32 [B, P] and time_ids float32 [B, n] for both halves.
 */
export function addedConditioning(kind: 'base' | 'refiner', pooled: ReadonlyArray<{ cond: Float32Array; uncond: Float32Array }>, height: number, width: number, mc?: SdxlMicroConditioning): AddedConditioning {
  const ids = sdxlTimeIds(kind, height, width, mc);
  const stack = (rows: Float32Array[]) => {
    const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
    let o = 0;
    for (const r of rows) {
      out.set(r, o);
      o += r.length;
    }
    return out;
  };
  return {
    cond: { textEmbeds: stack(pooled.map((p) => p.cond)), timeIds: stack(pooled.map(() => ids.cond)) },
    uncond: { textEmbeds: stack(pooled.map((p) => p.uncond)), timeIds: stack(pooled.map(() => ids.uncond)) },
  };
}
