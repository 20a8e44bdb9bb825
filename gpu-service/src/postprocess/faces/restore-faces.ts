/**
 * The face-restoration stage (`restore_faces`): for each final image, detect the faces (face-detector.ts), align
 * each to the restorer's template with the similarity transform of its 5 landmarks (align.ts), warp the crop at the
 * restorer's size (bilinear, border grey RGB (132, 133, 135) as facexlib), restore it (face-restorer.ts), and paste it
 * back through the inverse transform with the feathered mask of paste-back.ts. Faces are processed best score
 * first, each pasted onto the result of the previous ones (facexlib pastes them in the same loop).
 * Source: facexlib/utils/face_restoration_helper.py (FaceRestoreHelper: get_face_landmarks_5, align_warp_face,
 * paste_faces_to_input_image) as GFPGAN's and CodeFormer's inference scripts drive it.
 */
import type { OnnxModel } from '../../onnx/session';
import type { StageImage } from '../image-tensor';
import type { PostprocessSidecar } from '../postprocess-interfaces';
import { estimateSimilarity, faceTemplate, warpAffine } from './align';
import { detectFaces } from './face-detector';
import { restoreCrop, restorerInputs, restorerSize } from './face-restorer';
import { pasteFace } from './paste-back';

/** facexlib's border value for the aligned crop, in RGB (its code passes (135, 133, 132) to cv2 on a BGR image). */
export const CROP_BORDER_RGB = [132, 133, 135] as const;

/** The two models of the stage. */
export interface FaceModels {
  detector: { session: OnnxModel; sidecar: PostprocessSidecar };
  restorer: { session: OnnxModel; sidecar: PostprocessSidecar };
}

/**
 * Restore the faces of one image.
 * @param fidelity in [0, 1], for a restorer with a fidelity input (face-restorer.ts).
 * @returns the image (a new RGB buffer; alpha kept) and how many faces were restored (0: the image unchanged).
 * @throws Error from either model's run or interface checks; the signal's reason when aborted between faces.
 */
export async function restoreFaces(models: FaceModels, image: StageImage, fidelity: number, signal?: AbortSignal): Promise<{ image: StageImage; faces: number }> {
  const { width, height } = image;
  const faces = await detectFaces(models.detector.session, models.detector.sidecar, image.rgb, width, height);
  if (faces.length === 0) return { image, faces: 0 };
  const { image: inputName } = restorerInputs(models.restorer.session, models.restorer.sidecar);
  const size = restorerSize(models.restorer.session, models.restorer.sidecar, inputName);
  const template = faceTemplate(size);
  const rgb = new Uint8Array(image.rgb);
  for (const face of faces) {
    signal?.throwIfAborted();
    const toCrop = estimateSimilarity(face.landmarks, template);
    const planar = new Float32Array(3 * width * height);
    for (let p = 0; p < width * height; p++) for (let c = 0; c < 3; c++) planar[c * width * height + p] = rgb[p * 3 + c];
    const crop = warpAffine(planar, 3, width, height, toCrop, size, size, CROP_BORDER_RGB);
    const restored = await restoreCrop(models.restorer.session, models.restorer.sidecar, crop, size, fidelity);
    const interleaved = new Float32Array(3 * size * size);
    for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) interleaved[p * 3 + c] = restored[c * size * size + p];
    pasteFace(rgb, width, height, interleaved, size, toCrop);
  }
  return { image: { ...image, rgb }, faces: faces.length };
}
