/**
 * A job's post-processing: the models its options need, found when the job is admitted (so a missing or unusable
 * model is a 400 naming the job field, never a silent skip or a failure half-way through a run), opened when it
 * runs, and recorded in the receipt as they run.
 *
 * Job fields (shared/src/generation-job.ts) → stages, in the order they run:
 * - `hires_fix.upscaler` `model` + `hires_fix.upscale_model` → `hires_upscale`: the first pass's decoded images
 *   upscaled by that model (hires-upscale.ts), inside the pipeline;
 * - `restore_faces` (+ `face_restore_model`, `face_restore_fidelity`) → `face_detect` + `face_restore`: the first
 *   usable detector of MODELS_DIR/facerestore (by id) and the restorer (`face_restore_model`, else the first usable
 *   one by id) restore each face of each final image (faces/restore-faces.ts); the `face_restore` entry counts the
 *   faces per image and records the fidelity fed to a restorer that takes one;
 * - `background` `transparent` (+ `matting_model`, default the first usable model of MODELS_DIR/matting by id) →
 *   `matting`: alpha composited into each final image (matting.ts); output png or webp.
 * Each ran stage is `{stage, model, hash}` (hash: the SHA-256 of the model's ONNX file) in `params.postprocess`.
 */
import type { GenerationJob, PostprocessStage } from '@image-api/shared/generation-job';
import type { DecodedImage } from '../diffusion/pipelines/generate';
import { ServiceError } from '../lib/errors';
import type { ImageUpscaler } from './hires-upscale';
import { removeBackground } from './matting';
import { asModelFailure } from './postprocess-model-error';
import { POSTPROCESS_FOLDERS, type PostprocessCatalog, type PostprocessEntry } from './postprocess-catalog';
import { facerestoreRole, type PostprocessKind } from './postprocess-interfaces';
import { DEFAULT_FIDELITY, restorerInputs } from './faces/face-restorer';
import { restoreFaces, type FaceModels } from './faces/restore-faces';
import type { PostprocessSessions } from './postprocess-sessions';
import type { OnnxModel } from '../onnx/session';
import { DEFAULT_TILE_OPTIONS, type TileOptions } from './upscale-tiles';

/** The post-processing models a job needs (found at admission). */
export interface ResolvedPostprocess {
  upscaler?: PostprocessEntry;
  matting?: PostprocessEntry;
  /** The job field that chose the matting model (`matting_model`, or `background` for the default one). */
  mattingParam?: string;
  /** The face detector and restorer for restore_faces, and the field that chose the restorer. */
  faces?: { detector: PostprocessEntry; restorer: PostprocessEntry; restorerParam: string };
}

/** A job without post-processing. */
export const NO_POSTPROCESS: ResolvedPostprocess = {};

/** Whether a job runs any post-processing model (then its sessions are opened for the run). */
export function hasPostprocess(resolved: ResolvedPostprocess): boolean {
  return resolved.upscaler !== undefined || resolved.matting !== undefined || resolved.faces !== undefined;
}

const KIND_WORD: Record<PostprocessKind, string> = { matting: 'matting (background removal)', facerestore: 'face restoration', upscaler: 'upscaler' };

function refuse(param: string, message: string): ServiceError {
  return new ServiceError(400, 'invalid_request', `${param}: ${message}`, param);
}

/** The model `id` of `kind`, usable, or a 400 on `param` listing the usable ones. */
async function findUsable(catalog: PostprocessCatalog, kind: PostprocessKind, id: string, param: string): Promise<PostprocessEntry> {
  const entry = await catalog.find(kind, id);
  if (!entry) {
    const available = (await catalog.list(kind)).filter((m) => !m.error).map((m) => m.id);
    throw refuse(param, `no ${KIND_WORD[kind]} model named "${id}" in MODELS_DIR/${POSTPROCESS_FOLDERS[kind]}. Available: ${available.join(', ') || 'none'}.`);
  }
  if (entry.error) throw refuse(param, `the ${KIND_WORD[kind]} model "${id}" cannot be used: ${entry.error}`);
  return entry;
}

/** The face detector and restorer of restore_faces (see resolveJobPostprocess). */
async function resolveFaces(job: GenerationJob, catalog: PostprocessCatalog): Promise<NonNullable<ResolvedPostprocess['faces']>> {
  const usable = (await catalog.list('facerestore')).filter((m) => !m.error);
  const folder = `MODELS_DIR/${POSTPROCESS_FOLDERS.facerestore}`;
  const detector = usable.find((m) => facerestoreRole(m.id, m.sidecar) === 'detector');
  if (!detector) throw refuse('restore_faces', `restoring faces needs a model of kind "facerestore" with role detector (a face detector) in ${folder}, and this service has none`);
  if (job.face_restore_model !== undefined) {
    const restorer = await findUsable(catalog, 'facerestore', job.face_restore_model, 'face_restore_model');
    if (facerestoreRole(restorer.id, restorer.sidecar) !== 'restorer') throw refuse('face_restore_model', `"${restorer.id}" is a face detector, not a restorer`);
    return { detector, restorer, restorerParam: 'face_restore_model' };
  }
  const restorer = usable.find((m) => facerestoreRole(m.id, m.sidecar) === 'restorer');
  if (!restorer) throw refuse('restore_faces', `restoring faces needs a model of kind "facerestore" with role restorer (GFPGAN / CodeFormer-style) in ${folder}, and this service has none`);
  return { detector, restorer, restorerParam: 'restore_faces' };
}

/**
 * Find the post-processing models `job` needs.
 * @throws ServiceError 400 naming the field: `hires_fix.upscale_model` (missing with upscaler `model`, given with
 *         another upscaler, unknown — the message lists the available ones — or unusable); `background` (jpeg output,
 *         or no usable matting model: the message names the missing kind and folder); `matting_model` (unknown,
 *         unusable, or given without background transparent); `restore_faces` (no usable face detector or restorer:
 *         the message names the kind, role and folder); `face_restore_model` (unknown, unusable, a detector);
 *         `face_restore_model` / `face_restore_fidelity` without restore_faces.
 */
export async function resolveJobPostprocess(job: GenerationJob, catalog: PostprocessCatalog): Promise<ResolvedPostprocess> {
  const out: ResolvedPostprocess = {};
  const hires = job.hires_fix;
  if (hires?.upscaler === 'model') {
    if (!hires.upscale_model) {
      const available = (await catalog.list('upscaler')).filter((m) => !m.error).map((m) => m.id);
      throw refuse('hires_fix.upscale_model', `upscaler "model" needs an upscaler model's id. Available: ${available.join(', ') || 'none'}.`);
    }
    out.upscaler = await findUsable(catalog, 'upscaler', hires.upscale_model, 'hires_fix.upscale_model');
  } else if (hires?.upscale_model !== undefined) {
    throw refuse('hires_fix.upscale_model', `only used with upscaler "model" (the upscaler is "${hires.upscaler}")`);
  }
  if (job.background === 'transparent') {
    if (job.output.format === 'jpeg') throw refuse('background', 'JPEG has no alpha channel: a transparent background needs output format png or webp');
    if (job.matting_model !== undefined) {
      out.matting = await findUsable(catalog, 'matting', job.matting_model, 'matting_model');
      out.mattingParam = 'matting_model';
    } else {
      out.matting = (await catalog.list('matting')).find((m) => !m.error);
      if (!out.matting) throw refuse('background', `a transparent background needs a model of kind "matting" (background removal) in MODELS_DIR/${POSTPROCESS_FOLDERS.matting}, and this service has none`);
    }
  } else if (job.matting_model !== undefined) {
    throw refuse('matting_model', 'only used with background "transparent"');
  }
  if (job.restore_faces) out.faces = await resolveFaces(job, catalog);
  else if (job.face_restore_model !== undefined) throw refuse('face_restore_model', 'only used with restore_faces true');
  else if (job.face_restore_fidelity !== undefined) throw refuse('face_restore_fidelity', 'only used with restore_faces true');
  return out;
}

/** The stages of a job, opened for its run. */
export interface JobStages {
  /** The hires-fix upscaler model (GenerateModels.upscaler). */
  upscaler?: ImageUpscaler;
  matting?: { session: OnnxModel; entry: PostprocessEntry; param: string };
  faces?: { models: FaceModels; detector: PostprocessEntry; restorer: PostprocessEntry; param: string; fidelity: number; takesFidelity: boolean };
  /** Receipt entries of the stages opened, by stage name. */
  records: Map<string, PostprocessStage>;
}

/** No stages. */
export const NO_STAGES: JobStages = { records: new Map() };

/** A model file onnxruntime cannot open (or that cannot be read): 503 model_unavailable naming the job field. */
async function opened(sessions: PostprocessSessions, entry: PostprocessEntry, param: string): Promise<OnnxModel> {
  try {
    return await sessions.session(entry);
  } catch (err) {
    throw new ServiceError(503, 'model_unavailable', `${param}: the ${KIND_WORD[entry.kind]} model "${entry.id}" cannot be loaded: ${(err as Error).message}`, param);
  }
}

/**
 * Open the sessions of a job's post-processing models and hash their files.
 * @param fidelity the job's face_restore_fidelity (default DEFAULT_FIDELITY).
 * @throws ServiceError 503 model_unavailable naming the job field when onnxruntime cannot load a model; 400 naming
 *         the restorer's field when its graph lacks the inputs the faces stage needs; the read
 *         error when a file cannot be hashed.
 */
export async function openJobStages(
  resolved: ResolvedPostprocess,
  catalog: PostprocessCatalog,
  sessions: PostprocessSessions,
  tiles: TileOptions = DEFAULT_TILE_OPTIONS,
  fidelity?: number,
): Promise<JobStages> {
  const records = new Map<string, PostprocessStage>();
  const stages: JobStages = { records };
  if (resolved.upscaler) {
    const e = resolved.upscaler;
    stages.upscaler = { id: e.id, session: await opened(sessions, e, 'hires_fix.upscale_model'), sidecar: e.sidecar, tiles };
    records.set('hires_upscale', { stage: 'hires_upscale', model: e.id, hash: await catalog.sha256(e) });
  }
  if (resolved.faces) {
    const { detector, restorer, restorerParam } = resolved.faces;
    const models: FaceModels = {
      detector: { session: await opened(sessions, detector, 'restore_faces'), sidecar: detector.sidecar },
      restorer: { session: await opened(sessions, restorer, restorerParam), sidecar: restorer.sidecar },
    };
    let takesFidelity: boolean;
    try {
      takesFidelity = restorerInputs(models.restorer.session, restorer.sidecar).fidelity !== undefined;
    } catch (err) {
      throw refuse(restorerParam, `the face restoration model "${restorer.id}" cannot be used: ${(err as Error).message}`);
    }
    stages.faces = { models, detector, restorer, param: restorerParam, fidelity: fidelity ?? DEFAULT_FIDELITY, takesFidelity };
    records.set('face_detect', { stage: 'face_detect', model: detector.id, hash: await catalog.sha256(detector) });
    records.set('face_restore', { stage: 'face_restore', model: restorer.id, hash: await catalog.sha256(restorer) });
  }
  if (resolved.matting) {
    const e = resolved.matting;
    stages.matting = { session: await opened(sessions, e, resolved.mattingParam ?? 'background'), entry: e, param: resolved.mattingParam ?? 'background' };
    records.set('matting', { stage: 'matting', model: e.id, hash: await catalog.sha256(e) });
  }
  return stages;
}

/**
 * Run the image stages on each final image: restore_faces, then the matting alpha for background transparent.
 * @throws PostprocessModelError naming the job field when a model's run fails; the signal's reason when aborted.
 * @returns the images (with `alpha` when matted) and the receipt entries of every stage that ran, in order
 *          (`hires_upscale` first when the pipeline ran it).
 */
export async function applyImageStages(stages: JobStages, images: DecodedImage[], signal?: AbortSignal): Promise<{ images: DecodedImage[]; ran: PostprocessStage[] }> {
  const ran: PostprocessStage[] = [];
  const upscale = stages.records.get('hires_upscale');
  if (upscale) ran.push(upscale);
  let out = images;
  if (stages.faces) {
    const { models, detector, restorer, param, fidelity, takesFidelity } = stages.faces;
    const counts: number[] = [];
    const restored: DecodedImage[] = [];
    for (const img of out) {
      signal?.throwIfAborted();
      const r = await asModelFailure(param, `the face models "${detector.id}" and "${restorer.id}"`, () => restoreFaces(models, img, fidelity, signal), signal);
      restored.push({ ...img, ...r.image });
      counts.push(r.faces);
    }
    out = restored;
    ran.push(stages.records.get('face_detect')!, { ...stages.records.get('face_restore')!, faces: counts, ...(takesFidelity ? { fidelity } : {}) });
  }
  if (stages.matting) {
    const { session, entry, param } = stages.matting;
    const before = out;
    out = [];
    for (const img of before) {
      signal?.throwIfAborted();
      out.push({ ...img, ...(await asModelFailure(param, `the matting model "${entry.id}"`, () => removeBackground(session, entry.sidecar, img), signal)) });
    }
    ran.push(stages.records.get('matting')!);
  }
  return { images: out, ran };
}
