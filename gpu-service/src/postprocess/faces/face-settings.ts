/**
 * The face-restoration settings a `facerestore` sidecar `<name>.json` may add to the common ones
 * (postprocess-interfaces.ts; README "Post-processing", "Restore faces"). Unknown fields are refused.
 */
import { z } from 'zod';
import type { PostprocessSidecar } from '../postprocess-interfaces';

const FaceSettingsSchema = z
  .object({
    /** Detector: detections below this score are dropped (default 0.5). */
    score_threshold: z.number().min(0).max(1).optional(),
    /** Detector: IoU above which the lower-scored of two boxes is dropped (default 0.4, facexlib's RetinaFace). */
    nms_iou: z.number().min(0).max(1).optional(),
    /** Restorer: the name of its fidelity input (default `w`, CodeFormer's export, when the graph has it). */
    fidelity_input: z.string().min(1).optional(),
  })
  .passthrough();

/** The face settings of a sidecar. */
export interface FaceSettings {
  score_threshold: number;
  nms_iou: number;
  fidelity_input?: string;
}

const COMMON = new Set(['input', 'output', 'mean', 'std', 'role', 'input_size']);

/**
 * Read the face settings of a facerestore sidecar.
 * @throws Error naming the bad field (a wrong type or range, or a field no facerestore model has).
 */
export function faceSettings(sidecar: PostprocessSidecar): FaceSettings {
  const parsed = FaceSettingsSchema.safeParse(sidecar);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${issue.path.join('.')}: ${issue.message}`);
  }
  for (const key of Object.keys(sidecar)) {
    if (!COMMON.has(key) && !(key in FaceSettingsSchema.shape)) throw new Error(`${key}: not a facerestore sidecar field`);
  }
  return { score_threshold: parsed.data.score_threshold ?? 0.5, nms_iou: parsed.data.nms_iou ?? 0.4, fidelity_input: parsed.data.fidelity_input };
}
