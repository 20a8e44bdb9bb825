/**
 * Seeded fuzzing of the public request bodies: from one valid body per route, mutated copies (a field
 * of another type or out of range, a field removed, unknown fields, deep nesting) and raw bodies that
 * are not the JSON object a route expects (truncated, not JSON, an array, empty). Deterministic for a
 * seed, so a failure names a case that can be replayed.
 */

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One fuzzed request. */
export interface FuzzCase {
  method: 'POST' | 'GET';
  path: string;
  /** JSON text, raw text, or a multipart form; absent for GET. */
  body?: string | FormData;
  contentType?: string;
  /** What was done to the body (for failure messages). */
  mutation: string;
}

/** Valid bodies per JSON route (the fuzz key's compute budget refuses them before any GPU work); `png` is a base64 PNG. */
const jsonRoutes = (png: string): Array<{ path: string; body: Record<string, unknown> }> => [
  { path: '/v1/images/generations', body: { prompt: 'a red apple', size: '64x64', n: 1, sampling_steps: 2, response_format: 'b64_json', seed: 1 } },
  { path: '/v1/img2img', body: { prompt: 'a red apple', width: 64, height: 64, steps: 2, image_url: png, denoise_strength: 0.5 } },
  {
    path: '/v3/async/txt2img',
    body: { extra: { response_image_type: 'png' }, request: { model_name: 'tiny-analytic', prompt: 'a red apple', width: 128, height: 128, image_num: 1, steps: 2, guidance_scale: 7, sampler_name: 'Euler a', seed: 1 } },
  },
  {
    path: '/v3/async/img2img',
    body: { extra: {}, request: { model_name: 'tiny-analytic', prompt: 'a red apple', width: 128, height: 128, image_num: 1, steps: 2, guidance_scale: 7, sampler_name: 'Euler a', seed: 1, image_base64: png, strength: 0.5 } },
  },
  {
    path: '/v3/async/inpainting',
    body: {
      extra: {},
      request: {
        model_name: 'tiny-analytic', prompt: 'a red apple', width: 128, height: 128, image_num: 1, steps: 2, guidance_scale: 7, sampler_name: 'Euler a', seed: 1,
        image_base64: png, mask_image_base64: png,
      },
    },
  },
];

/** Multipart routes (OpenAI edits / variations) and their text fields. */
const FORM_ROUTES: Array<{ path: string; fields: Record<string, string> }> = [
  { path: '/v1/images/edits', fields: { prompt: 'a red apple', size: '64x64', n: '1', response_format: 'b64_json' } },
  { path: '/v1/images/variations', fields: { size: '64x64', n: '1', response_format: 'b64_json' } },
];

/** Letters, digits and punctuation that cannot form a URL (no ':' or '/'): no fuzzed value makes the edge fetch anything. */
const SAFE_CHARS = Array.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,;!?+=#%&*()[]{}<>"\'\\é漢🙂\u0000\n');

/** The first `n` characters (code points, so no surrogate pair is split). */
function head(text: string, n: number): string {
  return Array.from(text).slice(0, n).join('');
}

function randomString(random: () => number, maxLength: number): string {
  const length = Math.floor(random() * maxLength);
  let text = '';
  for (let i = 0; i < length; i++) text += SAFE_CHARS[Math.floor(random() * SAFE_CHARS.length)];
  return text;
}

/** A value of a random kind: the types and edge values validation must refuse or accept cleanly. */
function randomValue(random: () => number, depth = 0): unknown {
  const pick = Math.floor(random() * 16);
  switch (pick) {
    case 0: return null;
    case 1: return random() < 0.5;
    case 2: return Math.floor(random() * 2 ** 31) - 2 ** 30;
    case 3: return (random() - 0.5) * 1e308;
    case 4: return -1;
    case 5: return 0;
    case 6: return 1e21;
    case 7: return 0.5;
    case 8: return randomString(random, 40);
    case 9: return '';
    case 10: return 'x'.repeat(2000 + Math.floor(random() * 3000));
    case 11: return depth > 2 ? [] : Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
    case 12: return depth > 2 ? {} : { [randomString(random, 8)]: randomValue(random, depth + 1) };
    case 13: return '64x64';
    case 14: return Number.MAX_SAFE_INTEGER + 2;
    default: return '-1';
  }
}

function mutateObject(random: () => number, body: Record<string, unknown>, depth = 0): { body: Record<string, unknown>; mutation: string } {
  const copy: Record<string, unknown> = structuredClone(body);
  const keys = Object.keys(copy);
  const key = keys[Math.floor(random() * keys.length)];
  const nested = copy[key];
  if (nested && typeof nested === 'object' && !Array.isArray(nested) && depth < 1 && random() < 0.7) {
    const inner = mutateObject(random, nested as Record<string, unknown>, depth + 1);
    copy[key] = inner.body;
    return { body: copy, mutation: `${key}.${inner.mutation}` };
  }
  const kind = random();
  if (kind < 0.6) {
    const value = randomValue(random);
    copy[key] = value;
    return { body: copy, mutation: `${key}=${head(JSON.stringify(value) ?? '', 40)}` };
  }
  if (kind < 0.8) {
    delete copy[key];
    return { body: copy, mutation: `-${key}` };
  }
  const extra = randomString(random, 12) || 'extra';
  copy[extra] = randomValue(random);
  return { body: copy, mutation: `+${extra}` };
}

/** Raw bodies that are not a JSON object. */
function rawBody(random: () => number, valid: string): { body: string; mutation: string } {
  const pick = Math.floor(random() * 7);
  switch (pick) {
    case 0: {
      const cut = Math.floor(random() * valid.length);
      return { body: valid.slice(0, cut), mutation: `truncated at ${cut}` };
    }
    case 1: return { body: randomString(random, 200), mutation: 'not JSON' };
    case 2: return { body: '[1,2,3]', mutation: 'an array' };
    case 3: return { body: '', mutation: 'empty' };
    case 4: return { body: '"a string"', mutation: 'a JSON string' };
    case 5: return { body: `${'['.repeat(5000)}${']'.repeat(5000)}`, mutation: 'nested 5000 deep' };
    default: return { body: `{"a":${'{"a":'.repeat(300)}1${'}'.repeat(300)}}`, mutation: 'objects nested 300 deep' };
  }
}

/**
 * `count` fuzzed requests over every public route (JSON and multipart POSTs, task reads), from `seed`;
 * `pngBase64` is a valid image for the image fields, so mutations of the other fields get past the image checks.
 */
export function fuzzCases(seed: number, count: number, pngBase64: string): FuzzCase[] {
  const random = seededRandom(seed);
  const JSON_ROUTES = jsonRoutes(pngBase64);
  const cases: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    const lane = random();
    if (lane < 0.72) {
      const route = JSON_ROUTES[Math.floor(random() * JSON_ROUTES.length)];
      if (random() < 0.8) {
        let { body, mutation } = mutateObject(random, route.body);
        if (random() < 0.3) {
          const second = mutateObject(random, body);
          body = second.body;
          mutation += ` ${second.mutation}`;
        }
        cases.push({ method: 'POST', path: route.path, body: JSON.stringify(body), contentType: 'application/json', mutation });
      } else {
        const raw = rawBody(random, JSON.stringify(route.body));
        const contentType = random() < 0.85 ? 'application/json' : random() < 0.5 ? 'text/plain' : 'multipart/form-data; boundary=nope';
        cases.push({ method: 'POST', path: route.path, body: raw.body, contentType, mutation: `${raw.mutation} as ${contentType}` });
      }
    } else if (lane < 0.9) {
      const route = FORM_ROUTES[Math.floor(random() * FORM_ROUTES.length)];
      const form = new FormData();
      const mutations: string[] = [];
      for (const [name, value] of Object.entries(route.fields)) {
        const roll = random();
        if (roll < 0.15) mutations.push(`-${name}`);
        else if (roll < 0.45) {
          const text = head(String(randomValue(random)), 3000);
          form.append(name, text);
          mutations.push(`${name}=${head(text, 20)}`);
        } else form.append(name, value);
      }
      const imageRoll = random();
      if (imageRoll < 0.4) form.append('image', new Blob([Buffer.from(pngBase64, 'base64')], { type: 'image/png' }), 'pixel.png');
      else if (imageRoll < 0.7) {
        form.append('image', new Blob([randomString(random, 300)], { type: 'image/png' }), 'noise.png');
        mutations.push('image=noise');
      } else if (imageRoll < 0.85) {
        form.append('image', randomString(random, 50));
        mutations.push('image as text');
      } else mutations.push('-image');
      if (random() < 0.2) {
        form.append('mask', new Blob([randomString(random, 100)], { type: 'image/png' }), 'mask.png');
        mutations.push('mask=noise');
      }
      cases.push({ method: 'POST', path: route.path, body: form, mutation: mutations.join(' ') || 'valid form' });
    } else {
      const id = random() < 0.5 ? randomString(random, 40).replace(/[^A-Za-z0-9_-]/g, '') || 'x' : crypto.randomUUID();
      const reads = [
        `/v1/tasks/${encodeURIComponent(id)}`,
        `/v1/tasks/${encodeURIComponent(id)}/events`,
        `/v3/async/task-result?task_id=${encodeURIComponent(id)}`,
        `/v1/tasks?limit=${encodeURIComponent(head(String(randomValue(random)), 20))}`,
        `/v3/async/task-result`,
      ];
      cases.push({ method: 'GET', path: reads[Math.floor(random() * reads.length)], mutation: 'read' });
    }
  }
  return cases;
}
