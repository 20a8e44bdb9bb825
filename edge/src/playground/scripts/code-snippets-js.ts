/**
 * Browser module /playground/code-snippets.js: View Code's pure text builders. Given the exact request
 * the page would send (from request-builder.js) it writes the same call as curl, Python (openai SDK),
 * Node.js (openai SDK), the equivalent async-task request (POST /v3/async/txt2img | img2img |
 * inpainting, README "Public API") and the `draw` command line (README "Public API"). No DOM, no globals.
 *
 * Kept as text (String.raw, so no backticks or dollar-brace inside) because the Worker serves it as is.
 */
export const CODE_SNIPPETS_JS = String.raw`// View Code: the current request as curl, Python, Node.js, async task and draw CLI (pure).

/** Environment variable every snippet reads the API key from (the same one the draw CLI reads). */
export const API_KEY_ENV = 'IMAGE_API_KEY';

/** File names the edit snippets upload: the source image, and the OpenAI-convention mask. */
export const SOURCE_FILE = 'source.png';
export const MASK_FILE = 'mask.png';

/** A multipart text value: lists (loras, embeddings) as JSON text, as request-builder.js's editFormFields sends them. */
function formValue(value) {
  return value !== null && typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** Quote a string for a POSIX shell: single quotes, each ' written as '\''. */
export function shellQuote(text) {
  const value = String(text);
  if (/^[A-Za-z0-9_@%+=:,.\/-]+$/.test(value)) return value;
  return "'" + value.replace(/'/g, "'\\''") + "'";
}

/** A JSON value as a Python literal (JSON strings are valid Python strings; true/false/null differ). */
export function pythonLiteral(value, indent) {
  const pad = indent || '';
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number' || typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map((item) => pythonLiteral(item, pad)).join(', ') + ']';
  const keys = Object.keys(value);
  if (keys.length === 0) return '{}';
  const inner = pad + '    ';
  return '{\n' + keys.map((key) => inner + JSON.stringify(key) + ': ' + pythonLiteral(value[key], inner)).join(',\n') + ',\n' + pad + '}';
}

/** A JSON value as a JavaScript literal with unquoted identifier keys. */
export function javascriptLiteral(value, indent) {
  const pad = indent || '';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map((item) => javascriptLiteral(item, pad)).join(', ') + ']';
  const keys = Object.keys(value);
  if (keys.length === 0) return '{}';
  const inner = pad + '  ';
  const name = (key) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : JSON.stringify(key));
  return '{\n' + keys.map((key) => inner + name(key) + ': ' + javascriptLiteral(value[key], inner)).join(',\n') + ',\n' + pad + '}';
}

// Parameters the openai SDKs name themselves; everything else travels in extra_body (Python) or as
// extra properties of the params object (Node.js), which both SDKs send unchanged.
const PYTHON_GENERATE_PARAMS = ['model', 'prompt', 'n', 'size', 'response_format', 'quality', 'style', 'output_format', 'background', 'stream', 'user'];
const PYTHON_EDIT_PARAMS = ['model', 'prompt', 'n', 'size', 'response_format', 'quality', 'output_format', 'background', 'stream', 'user'];

function extension(body) {
  const format = body.output_format || 'png';
  return format === 'jpeg' ? 'jpg' : format;
}

/**
 * curl for the exact request. JSON bodies go in one single-quoted -d argument; the edit form uses
 * --form-string for text fields (so a prompt starting with @ or < is not read as a file) and -F for the
 * files. -N (no buffering) when streaming, so events print as they arrive.
 */
export function curlSnippet(request) {
  const lines = ['curl' + (request.body.stream ? ' -N' : '') + ' ' + shellQuote(request.origin + request.path)];
  lines.push('-H "Authorization: Bearer $' + API_KEY_ENV + '"');
  if (request.edit) {
    lines.push('-F image=@' + SOURCE_FILE);
    if (request.edit.hasMask) lines.push('-F mask=@' + MASK_FILE);
    for (const key of Object.keys(request.body)) lines.push('--form-string ' + shellQuote(key + '=' + formValue(request.body[key])));
  } else {
    lines.push('-H "Content-Type: application/json"');
    lines.push("-d '" + JSON.stringify(request.body, null, 2).replace(/'/g, "'\\''") + "'");
  }
  let text = lines.join(' \\\n  ') + '\n';
  if (request.edit) text = editFilesNote('#', request.edit) + text;
  return text;
}

function editFilesNote(comment, edit) {
  let note = comment + ' ' + SOURCE_FILE + ': the image you uploaded';
  if (edit.hasMask) note += '; ' + MASK_FILE + ': a PNG the same size, transparent where you painted (OpenAI convention)';
  return note + '\n';
}

/** Python with the openai SDK: images.generate / images.edit; API extensions go in extra_body. */
export function pythonSnippet(request) {
  const body = request.body;
  const known = request.edit ? PYTHON_EDIT_PARAMS : PYTHON_GENERATE_PARAMS;
  const args = [];
  if (request.edit) {
    args.push('image=open(' + JSON.stringify(SOURCE_FILE) + ', "rb")');
    if (request.edit.hasMask) args.push('mask=open(' + JSON.stringify(MASK_FILE) + ', "rb")');
  }
  const extra = {};
  for (const key of Object.keys(body)) {
    if (known.indexOf(key) >= 0) args.push(key + '=' + pythonLiteral(body[key], '    '));
    else extra[key] = body[key];
  }
  if (Object.keys(extra).length > 0) args.push('extra_body=' + pythonLiteral(extra, '    '));
  const call = request.edit ? 'client.images.edit' : 'client.images.generate';
  const lines = [];
  if (request.edit) lines.push(editFilesNote('#', request.edit).trimEnd());
  lines.push('import base64', 'import os', '', 'from openai import OpenAI', '');
  lines.push('client = OpenAI(base_url=' + JSON.stringify(request.origin + '/v1') + ', api_key=os.environ[' + JSON.stringify(API_KEY_ENV) + '])', '');
  const saveImage = (indent, item, index) => [
    indent + 'if ' + item + '.b64_json:',
    indent + '    with open(f"image-{' + index + '}.' + extension(body) + '", "wb") as f:',
    indent + '        f.write(base64.b64decode(' + item + '.b64_json))',
    indent + 'else:',
    indent + '    print(getattr(' + item + ', "url", None))',
  ];
  if (body.stream) {
    lines.push('stream = ' + call + '(');
    for (const arg of args) lines.push('    ' + arg + ',');
    lines.push(')');
    lines.push('count = 0');
    lines.push('for event in stream:');
    lines.push('    if event.type.endswith(".completed"):');
    lines.push.apply(lines, saveImage('        ', 'event', 'count'));
    lines.push('        count += 1');
  } else {
    lines.push('result = ' + call + '(');
    for (const arg of args) lines.push('    ' + arg + ',');
    lines.push(')');
    lines.push('for index, image in enumerate(result.data):');
    lines.push.apply(lines, saveImage('    ', 'image', 'index'));
  }
  return lines.join('\n') + '\n';
}

/** Node.js (ES module) with the openai SDK; the API's extra fields are sent as given. */
export function nodeSnippet(request) {
  const body = request.body;
  const params = {};
  const lines = [];
  if (request.edit) lines.push(editFilesNote('//', request.edit).trimEnd());
  lines.push("import fs from 'node:fs';", "import OpenAI from 'openai';", '');
  lines.push('const client = new OpenAI({ baseURL: ' + JSON.stringify(request.origin + '/v1') + ', apiKey: process.env.' + API_KEY_ENV + ' });', '');
  let literal;
  if (request.edit) {
    const files = ['  image: fs.createReadStream(' + JSON.stringify(SOURCE_FILE) + '),'];
    if (request.edit.hasMask) files.push('  mask: fs.createReadStream(' + JSON.stringify(MASK_FILE) + '),');
    for (const key of Object.keys(body)) params[key] = body[key];
    literal = '{\n' + files.join('\n') + javascriptLiteral(params).slice(1);
  } else {
    literal = javascriptLiteral(body);
  }
  const call = request.edit ? 'client.images.edit' : 'client.images.generate';
  const save = (indent, item, index) => [
    indent + 'if (' + item + '.b64_json) {',
    indent + "  fs.writeFileSync('image-' + " + index + " + '." + extension(body) + "', Buffer.from(" + item + ".b64_json, 'base64'));",
    indent + '} else {',
    indent + '  console.log(' + item + '.url);',
    indent + '}',
  ];
  if (body.stream) {
    lines.push('const stream = await ' + call + '(' + literal + ');');
    lines.push('let count = 0;');
    lines.push('for await (const event of stream) {');
    lines.push("  if (event.type.endsWith('.completed')) {");
    lines.push.apply(lines, save('    ', 'event', 'count'));
    lines.push('    count += 1;');
    lines.push('  }');
    lines.push('}');
  } else {
    lines.push('const result = await ' + call + '(' + literal + ');');
    lines.push('result.data.forEach((image, index) => {');
    lines.push.apply(lines, save('  ', 'image', 'index'));
    lines.push('});');
  }
  return lines.join('\n') + '\n';
}

function stepsOf(body, config) {
  if (body.sampling_steps !== undefined) return body.sampling_steps;
  if (body.quality !== undefined && config.qualitySteps[body.quality] !== undefined) return config.qualitySteps[body.quality];
  return config.defaults.sampling_steps;
}

function sizeOf(body, fallback) {
  const text = body.size || fallback || '';
  const match = /^(\d+)x(\d+)$/.exec(text);
  return match ? { width: Number(match[1]), height: Number(match[2]) } : null;
}

/**
 * The async-task equivalent (README "Public API"): POST /v3/async/txt2img (img2img with a source image,
 * inpainting with a mask) with {extra, request}, then the polling call. Sampler names are the A1111
 * names of config.asyncSamplers; steps come from sampling_steps or the quality table.
 * @param nativeSize "WxH" used when the body has no size (the async API needs width and height)
 */
export function asyncSnippet(request, config, nativeSize) {
  const body = request.body;
  const sampleMethod = body.sample_method || config.defaults.sample_method;
  const scheduleMethod = body.schedule_method || config.defaults.schedule_method;
  const names = (config.asyncSamplers[sampleMethod] || {})[scheduleMethod] || { sampler_name: 'Euler a' };
  const task = { model_name: body.model || '<model>' };
  if (request.edit) task.image_base64 = '<base64 of ' + SOURCE_FILE + '>';
  if (request.edit && request.edit.hasMask) task.mask_image_base64 = '<base64 of the Save Mask PNG (white = repaint)>';
  task.prompt = body.prompt;
  if (body.negative_prompt) task.negative_prompt = body.negative_prompt;
  const size = sizeOf(body, nativeSize);
  if (size) {
    task.width = size.width;
    task.height = size.height;
  }
  task.image_num = body.n;
  task.steps = stepsOf(body, config);
  task.guidance_scale = body.cfg_scale !== undefined ? body.cfg_scale : config.defaults.cfg_scale;
  task.sampler_name = names.sampler_name;
  if (names.scheduler) task.scheduler = names.scheduler;
  task.seed = body.seed !== undefined ? body.seed : -1;
  if (request.edit) task.strength = body.strength !== undefined ? body.strength : config.defaults.strength;
  // The same add-on lists; the VAE field is Novita's sd_vae.
  if (body.loras) task.loras = body.loras;
  if (body.embeddings) task.embeddings = body.embeddings;
  if (body.vae) task.sd_vae = body.vae;
  const route = request.edit ? (request.edit.hasMask ? 'inpainting' : 'img2img') : 'txt2img';
  const payload = { extra: { response_image_type: body.output_format || 'png' }, request: task };
  const lines = [];
  if (names.note) lines.push('# note: ' + names.note);
  if (body.guidance !== undefined) lines.push('# note: the async API has no guidance field (FLUX-class distilled guidance)');
  lines.push('# 1. submit the task; the answer is {"task_id": "..."}');
  lines.push('curl ' + shellQuote(request.origin + '/v3/async/' + route) + ' \\');
  lines.push('  -H "Authorization: Bearer $' + API_KEY_ENV + '" \\');
  lines.push('  -H "Content-Type: application/json" \\');
  lines.push("  -d '" + JSON.stringify(payload, null, 2).replace(/'/g, "'\\''") + "'");
  lines.push('');
  lines.push('# 2. set TASK_ID to that task_id; poll until task.status is TASK_STATUS_SUCCEED, then download images[].image_url');
  lines.push('curl ' + shellQuote(request.origin + '/v3/async/task-result?task_id=') + '"$TASK_ID" \\');
  lines.push('  -H "Authorization: Bearer $' + API_KEY_ENV + '"');
  return lines.join('\n') + '\n';
}

/**
 * The draw CLI (README "CLI: draw") for the same inputs, as it runs in a clone of the repository after
 * npm install (npx finds the package's own draw bin there); notes what the CLI cannot express.
 */
export function drawSnippet(request, config) {
  const body = request.body;
  const notes = [];
  if (request.edit) notes.push('# note: draw only makes new images (no edit mode); this is the text-to-image call with the same settings');
  if (body.n > 1) notes.push('# note: draw makes one image per run; image i of this batch used seed + i');
  if (body.guidance !== undefined) notes.push('# note: draw has no --guidance flag');
  const words = ['IMAGE_API_URL=' + shellQuote(request.origin), 'npx', 'draw'];
  if (body.model) words.push(shellQuote(body.model));
  words.push(shellQuote(body.prompt));
  if (body.size) words.push('--size ' + body.size);
  words.push('--sampler ' + shellQuote(body.sample_method || config.defaults.sample_method));
  if (body.schedule_method) words.push('--scheduler ' + shellQuote(body.schedule_method));
  words.push('--sample-steps ' + stepsOf(body, config));
  if (body.cfg_scale !== undefined) words.push('--cfg-scale ' + body.cfg_scale);
  if (body.seed !== undefined) words.push('--seed ' + body.seed);
  if (body.negative_prompt) words.push('--negative-prompt ' + shellQuote(body.negative_prompt));
  for (const lora of body.loras || []) words.push('--lora ' + shellQuote(lora.model_name + ':' + lora.strength));
  if (body.vae) words.push('--vae ' + shellQuote(body.vae));
  if (body.embeddings) notes.push('# note: draw has no flag for embeddings; use curl or the async task to send them');
  if (body.output_format && body.output_format !== 'png') words.push('--format ' + body.output_format);
  if (body.background) words.push('--background ' + body.background);
  const lines = ['# in a clone of the repository, after npm install; the key comes from $' + API_KEY_ENV].concat(notes);
  lines.push(words.join(' '));
  return lines.join('\n') + '\n';
}

/** Tabs of View Code, in display order: id and label. */
export const SNIPPET_KINDS = [
  { id: 'curl', label: 'curl' },
  { id: 'python', label: 'Python' },
  { id: 'node', label: 'Node.js' },
  { id: 'async', label: 'Async task' },
  { id: 'draw', label: 'draw CLI' },
];

/**
 * Every snippet for one request.
 * @param request {{origin: string, path: string, body: object, edit: null | {hasMask: boolean}}}
 *   origin like "http://127.0.0.1:8787", path "/v1/images/generations" or "/v1/images/edits"
 * @param config the PLAYGROUND_CONFIG of config.js
 * @param nativeSize "WxH" of the model, for the async request when the body has no size
 * @returns {{curl: string, python: string, node: string, async: string, draw: string}}
 */
export function buildSnippets(request, config, nativeSize) {
  return {
    curl: curlSnippet(request),
    python: pythonSnippet(request),
    node: nodeSnippet(request),
    async: asyncSnippet(request, config, nativeSize),
    draw: drawSnippet(request, config),
  };
}
`;
