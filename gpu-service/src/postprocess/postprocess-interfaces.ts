/**
 * The default I/O interface of each post-processing kind, and the sidecar `<name>.json` that describes an
 * export which differs from it (README, "Post-processing"). Every tensor is NCHW, batch 1, float32 or float16
 * (session.ts converts), channels in RGB order.
 *
 * - `matting` (RMBG-1.4 / BiRefNet-style): input `[1, 3, H, W]` = (rgb / 255 − mean) / std with mean
 *   (0.5, 0.5, 0.5) and std (1, 1, 1) (briaai/RMBG-1.4 `preprocess_image`); output `[1, 1, H', W']` alpha in
 *   [0, 1] (RMBG-1.4's graph ends in a sigmoid; BiRefNet exports that end in logits say `"activation":
 *   "sigmoid"`). H × W: the sidecar's `input_size`, else the graph's static input dims, else (symbolic dims) the
 *   image's own size. The image is resized to it (bilinear) and the alpha back to the image's size (bilinear);
 *   values are clamped to [0, 1]. The first graph input and output are used unless the sidecar names them.
 * - `upscaler` (ESRGAN family: ESRGAN, Real-ESRGAN, SwinIR, … exported image → image): input `[1, 3, h, w]` rgb
 *   / 255 in [0, 1] (mean 0, std 1), output `[1, 3, s·h, s·w]` in [0, 1] (a sidecar's mean / std are undone on
 *   the output: y·std + mean), clamped. The integer scale s is read
 *   from each run's output shape (it must be the same integer on both axes). Run in overlapping tiles
 *   (upscale-tiles.ts), so the graph must accept any tile size.
 * - `facerestore`: a face detector (`"role": "detector"`) and a GFPGAN / CodeFormer-style restorer
 *   (`"role": "restorer"`); without a sidecar `role`, a file whose name contains `det`, `retinaface`, `scrfd` or
 *   `yolo` is a detector, any other a restorer. Their tensors are described by the face-restoration stage
 *   (postprocess/faces/); the sidecar may carry its further settings, which are kept as given.
 */
import { z } from 'zod';
import { faceSettings } from './faces/face-settings';

/** The post-processing model kinds (GET /v1/models `kind`). */
export type PostprocessKind = 'matting' | 'facerestore' | 'upscaler';

const Rgb = z.tuple([z.number(), z.number(), z.number()]);
const Size = z.tuple([z.number().int().min(8).max(4096), z.number().int().min(8).max(4096)]);
const common = {
  /** Graph input / output names (default: the first of each). */
  input: z.string().min(1).optional(),
  output: z.string().min(1).optional(),
  /** Normalisation of rgb / 255: (x − mean) / std, per channel. */
  mean: Rgb.optional(),
  std: Rgb.refine((s) => s.every((v) => v !== 0), 'std values must not be 0').optional(),
};

const MattingSidecarSchema = z
  .object({
    ...common,
    /** [width, height] the image is resized to for the network. */
    input_size: Size.optional(),
    /** What the output holds: alpha in [0, 1] (`none`) or logits (`sigmoid`). */
    activation: z.enum(['none', 'sigmoid']).optional(),
  })
  .strict();

const UpscalerSidecarSchema = z.object(common).strict();

const FacerestoreSidecarSchema = z
  .object({
    ...common,
    role: z.enum(['detector', 'restorer']).optional(),
    input_size: Size.optional(),
  })
  .passthrough();

/** What a sidecar may say (fields of the other kinds are refused by the strict kinds). */
export type PostprocessSidecar = z.infer<typeof MattingSidecarSchema> & z.infer<typeof UpscalerSidecarSchema> & z.infer<typeof FacerestoreSidecarSchema>;

/**
 * Validate a sidecar's JSON for `kind`.
 * @throws Error naming the first bad field and the rule (for facerestore also the face settings of
 *         faces/face-settings.ts: score_threshold, nms_iou, fidelity_input; any other field is refused).
 */
export function parseSidecar(kind: PostprocessKind, raw: unknown): PostprocessSidecar {
  const schema = kind === 'matting' ? MattingSidecarSchema : kind === 'upscaler' ? UpscalerSidecarSchema : FacerestoreSidecarSchema;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${issue.path.join('.') || 'the sidecar'}: ${issue.message}`);
  }
  // The face stage's own settings (faces/face-settings.ts) are checked here too, so a bad one shows in the listing.
  if (kind === 'facerestore') faceSettings(parsed.data as PostprocessSidecar);
  return parsed.data as PostprocessSidecar;
}

/** The normalisation of a kind's default interface (mean, std applied to rgb / 255). */
export const DEFAULT_NORMALISATION: Readonly<Record<PostprocessKind, { mean: [number, number, number]; std: [number, number, number] }>> = {
  matting: { mean: [0.5, 0.5, 0.5], std: [1, 1, 1] },
  upscaler: { mean: [0, 0, 0], std: [1, 1, 1] },
  facerestore: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
};

/** The role of a face-restoration file: its sidecar's `role`, else by its name (see the module comment). */
export function facerestoreRole(id: string, sidecar: PostprocessSidecar): 'detector' | 'restorer' {
  if (sidecar.role) return sidecar.role;
  const name = id.split('/').pop() ?? id;
  return /det|retinaface|scrfd|yolo/i.test(name) ? 'detector' : 'restorer';
}
