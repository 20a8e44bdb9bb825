/**
 * A job's post-processing: the models its options need, found when the job is admitted (so a missing or unusable
 * model is a 400 naming the job field, never a silent skip or a failure half-way through a run), opened when it
 * runs, and recorded in the receipt as they run.
 *
 * Job fields (shared/src/generation-job.ts) → stages, in the order they run:
 * - `hires_fix.upscaler` `model` + `hires_fix.upscale_model` → `hires_upscale`: the first pass's decoded images
 *   upscaled by that model (hires-upscale.ts), inside the pipeline;
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
import type { PostprocessKind } from './postprocess-interfaces';
import type { PostprocessSessions } from './postprocess-sessions';
import type { OnnxModel } from '../onnx/session';
import { DEFAULT_TILE_OPTIONS, type TileOptions } from './upscale-tiles';

/** The post-processing models a job needs (found at admission). */
export interface ResolvedPostprocess {
  upscaler?: PostprocessEntry;
  matting?: PostprocessEntry;
  /** The job field that chose the matting model (`matting_model`, or `background` for the default one). */
  mattingParam?: string;
}

/** A job without post-processing. */
export const NO_POSTPROCESS: ResolvedPostprocess = {};

/** Whether a job runs any post-processing model (then its sessions are opened for the run). */
export function hasPostprocess(resolved: ResolvedPostprocess): boolean {
  return resolved.upscaler !== undefined || resolved.matting !== undefined;
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

/**
 * Find the post-processing models `job` needs.
 * @throws ServiceError 400 naming the field: `hires_fix.upscale_model` (missing with upscaler `model`, given with
 *         another upscaler, unknown — the message lists the available ones — or unusable); `background` (jpeg output,
 *         or no usable matting model: the message names the missing kind and folder); `matting_model` (unknown,
 *         unusable, or given without background transparent).
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
  return out;
}

/** The stages of a job, opened for its run. */
export interface JobStages {
  /** The hires-fix upscaler model (GenerateModels.upscaler). */
  upscaler?: ImageUpscaler;
  matting?: { session: OnnxModel; entry: PostprocessEntry; param: string };
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
 * @throws ServiceError 503 model_unavailable naming the job field when onnxruntime cannot load a model; the read
 *         error when a file cannot be hashed.
 */
export async function openJobStages(resolved: ResolvedPostprocess, catalog: PostprocessCatalog, sessions: PostprocessSessions, tiles: TileOptions = DEFAULT_TILE_OPTIONS): Promise<JobStages> {
  const records = new Map<string, PostprocessStage>();
  const stages: JobStages = { records };
  if (resolved.upscaler) {
    const e = resolved.upscaler;
    stages.upscaler = { id: e.id, session: await opened(sessions, e, 'hires_fix.upscale_model'), sidecar: e.sidecar, tiles };
    records.set('hires_upscale', { stage: 'hires_upscale', model: e.id, hash: await catalog.sha256(e) });
  }
  if (resolved.matting) {
    const e = resolved.matting;
    stages.matting = { session: await opened(sessions, e, resolved.mattingParam ?? 'background'), entry: e, param: resolved.mattingParam ?? 'background' };
    records.set('matting', { stage: 'matting', model: e.id, hash: await catalog.sha256(e) });
  }
  return stages;
}

/**
 * Run the image stages on each final image (the matting alpha for background transparent).
 * @throws PostprocessModelError naming the job field when a model's run fails; the signal's reason when aborted.
 * @returns the images (with `alpha` when matted) and the receipt entries of every stage that ran, in order
 *          (`hires_upscale` first when the pipeline ran it).
 */
export async function applyImageStages(stages: JobStages, images: DecodedImage[], signal?: AbortSignal): Promise<{ images: DecodedImage[]; ran: PostprocessStage[] }> {
  const ran: PostprocessStage[] = [];
  const upscale = stages.records.get('hires_upscale');
  if (upscale) ran.push(upscale);
  let out = images;
  if (stages.matting) {
    const { session, entry, param } = stages.matting;
    out = [];
    for (const img of images) {
      signal?.throwIfAborted();
      out.push({ ...img, ...(await asModelFailure(param, `the matting model "${entry.id}"`, () => removeBackground(session, entry.sidecar, img), signal)) });
    }
    ran.push(stages.records.get('matting')!);
  }
  return { images: out, ran };
}
