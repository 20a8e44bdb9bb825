import {
  DEFAULT_CFG_SCALE,
  DEFAULT_SAMPLE_METHOD,
  DEFAULT_SAMPLING_STEPS,
  DEFAULT_SCHEDULE_METHOD,
  DEFAULT_STRENGTH,
  MAX_IMAGES_PER_REQUEST,
  MAX_PROMPT_LENGTH,
  QUALITY_STEPS,
} from '@image-api/shared/api/openai-images';
import { resolveSampler, SAMPLER_NAMES, SCHEDULER_NAMES } from '@image-api/shared/sampler-names';
import { MAX_ADDONS } from '@image-api/shared/generation-job';

/**
 * GPUStack's default `guidance` (distilled guidance for FLUX-class models; README
 * "Public API"). The public schema has no default for it because other models ignore it, so the page keeps its own.
 */
export const DEFAULT_GUIDANCE = 3.5;

/** GPUStack's default `preview` ("Faster"). */
export const DEFAULT_PREVIEW = 'faster';

/**
 * How the async API (`POST /v3/async/txt2img`, A1111 names) spells one sd.cpp sampler + schedule pair.
 * `scheduler` is the A1111 ≥ 1.9 "Schedule type" label, present only when no combined name such as
 * "DPM++ 2M Karras" carries the schedule; `note` says what differs when there is no exact equivalent.
 */
export interface AsyncSamplerName {
  sampler_name: string;
  scheduler?: string;
  note?: string;
}

/** Everything the browser modules need from the server's tables, as plain JSON. */
export interface PlaygroundConfig {
  sampleMethods: string[];
  /** sample_method → the canonical sampler id it runs (a model's listing `samplers` names canonical ids). */
  sampleMethodIds: Record<string, string>;
  scheduleMethods: string[];
  previews: string[];
  qualities: string[];
  styles: string[];
  responseFormats: string[];
  outputFormats: string[];
  /** OpenAI `background` values (transparent is offered only when the server lists a `matting` model). */
  backgrounds: string[];
  qualitySteps: Record<string, number>;
  maxImages: number;
  /** Most LoRAs, and most embeddings, one request may name (shared/src/generation-job.ts MAX_ADDONS). */
  maxAddons: number;
  maxPromptLength: number;
  defaults: {
    n: number;
    response_format: string;
    quality: string;
    style: string;
    output_format: string;
    sample_method: string;
    schedule_method: string;
    sampling_steps: number;
    guidance: number;
    cfg_scale: number;
    preview: string;
    strength: number;
  };
  /** asyncSamplers[sample_method][schedule_method] → the async API's names. */
  asyncSamplers: Record<string, Record<string, AsyncSamplerName>>;
}

/**
 * Find the A1111 spelling of an sd.cpp (sample_method, schedule_method) pair by resolving both through
 * the one name table (shared/src/sampler-names.ts), so the async snippet asks for the same algorithm and
 * sigma schedule. Preference: a combined name with the same sampler and schedule ("DPM++ 2M Karras"); else
 * the same sampler with an A1111 "Schedule type" label; else the closest name plus a note.
 */
export function asyncSamplerName(sampleMethod: string, scheduleMethod: string): AsyncSamplerName {
  const wanted = resolveSampler('sdcpp', sampleMethod, scheduleMethod);
  const a1111Names = SAMPLER_NAMES.a1111;
  const exact = a1111Names.find((name) => {
    const candidate = resolveSampler('a1111', name);
    return candidate.sampler === wanted.sampler && candidate.scheduler === wanted.scheduler;
  });
  if (exact !== undefined) return { sampler_name: exact };

  const sameSampler = a1111Names.find((name) => resolveSampler('a1111', name).sampler === wanted.sampler);
  if (sameSampler !== undefined) {
    const label = SCHEDULER_NAMES.a1111.find(
      (schedule) => schedule !== 'Automatic' && resolveSampler('a1111', sameSampler, schedule).scheduler === wanted.scheduler,
    );
    if (label !== undefined) return { sampler_name: sameSampler, scheduler: label };
    return {
      sampler_name: sameSampler,
      note: `the async API has no "${scheduleMethod}" schedule; ${sameSampler} uses its own`,
    };
  }
  // sd.cpp-only algorithms (dpm++2mv2, ipndm, ipndm_v, lcm): name the nearest A1111 relative.
  const nearest: Record<string, string> = { dpmpp_2m_v2: 'DPM++ 2M', ipndm: 'PLMS', ipndm_v: 'PLMS', lcm: 'Euler' };
  const fallback = nearest[wanted.sampler] ?? 'Euler a';
  return { sampler_name: fallback, note: `the async API has no ${sampleMethod} sampler; ${fallback} is the nearest` };
}

/** Build the config from the shared tables (pure; runs once at module load). */
export function buildPlaygroundConfig(): PlaygroundConfig {
  const sampleMethods = [...SAMPLER_NAMES.sdcpp];
  const scheduleMethods = [...SCHEDULER_NAMES.sdcpp];
  const asyncSamplers: PlaygroundConfig['asyncSamplers'] = {};
  for (const sampler of sampleMethods) {
    asyncSamplers[sampler] = {};
    for (const schedule of scheduleMethods) asyncSamplers[sampler][schedule] = asyncSamplerName(sampler, schedule);
  }
  return {
    sampleMethods,
    sampleMethodIds: Object.fromEntries(sampleMethods.map((m) => [m, resolveSampler('sdcpp', m).sampler])),
    scheduleMethods,
    previews: ['faster', 'normal', 'none'],
    qualities: Object.keys(QUALITY_STEPS),
    styles: ['vivid', 'natural'],
    responseFormats: ['b64_json', 'url'],
    outputFormats: ['png', 'jpeg', 'webp'],
    backgrounds: ['auto', 'opaque', 'transparent'],
    qualitySteps: { ...QUALITY_STEPS },
    maxImages: MAX_IMAGES_PER_REQUEST,
    maxAddons: MAX_ADDONS,
    maxPromptLength: MAX_PROMPT_LENGTH,
    defaults: {
      n: 1,
      // The page shows images inline, so it asks for base64 (the API's own default is url).
      response_format: 'b64_json',
      quality: 'standard',
      style: 'vivid',
      output_format: 'png',
      sample_method: DEFAULT_SAMPLE_METHOD,
      schedule_method: DEFAULT_SCHEDULE_METHOD,
      sampling_steps: DEFAULT_SAMPLING_STEPS,
      guidance: DEFAULT_GUIDANCE,
      cfg_scale: DEFAULT_CFG_SCALE,
      preview: DEFAULT_PREVIEW,
      strength: DEFAULT_STRENGTH,
    },
    asyncSamplers,
  };
}

/** The playground's configuration, from shared/ (sampler names, defaults, quality → steps table). */
export const PLAYGROUND_CONFIG: PlaygroundConfig = buildPlaygroundConfig();

/** Browser module /playground/config.js: `export const PLAYGROUND_CONFIG = {...}`. */
export const CONFIG_JS = `// Generated by the edge from shared/ tables; do not edit in the browser.\nexport const PLAYGROUND_CONFIG = ${JSON.stringify(PLAYGROUND_CONFIG, null, 2)};\n`;
