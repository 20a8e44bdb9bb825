/**
 * Browser module /playground/main.js: wires the page (page-html.ts) to the pure modules — API key in
 * localStorage, model list and sizes, Generate / Edit modes, the parameter panel (OpenAI compatible /
 * Advanced), streaming progress (queue position, step, ETA) and previews, results and downloads, the
 * mask brush and View Code. All network calls go through api-client.js to the same-origin public API.
 *
 * Observable state for tests and users: #result-image carries data-kind="preview" while a preview is
 * shown and data-kind="final" for a finished image; #result carries data-task-id (the x-task-id header).
 *
 * Kept as text (String.raw, so no backticks or dollar-brace inside) because the Worker serves it as is.
 */
export const MAIN_JS = String.raw`// The image playground page.
import { PLAYGROUND_CONFIG as CONFIG } from './config.js';
import { bodyOutputFormat, buildRequestBody, editFormFields, fitEditSize, sizeOptions } from './request-builder.js';
import { buildSnippets, SNIPPET_KINDS } from './code-snippets.js';
import { ApiError, fetchModels, sendImageRequest } from './api-client.js';
import { MaskPainter } from './mask-painter.js';
import { pickRandomPrompt } from './random-prompts.js';

const KEY_STORAGE = 'image-playground.api-key';
const MODEL_STORAGE = 'image-playground.model';
/** Pixel budget for uploads before a model is known (the API's largest side, squared). */
const FALLBACK_MAX_PIXELS = 4096 * 4096;
const MIME_TYPES = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  /** Add-ons the server lists, by kind: {lora: [...], textualinversion: [...], vae: [...]}. */
  addons: { lora: [], textualinversion: [], vae: [] },
  /** LoRAs picked for the next request: {model_name, strength}. */
  loras: [],
  mode: 'generate',
  paramStyle: 'openai',
  /** Set once the server answered 400 param "stream": later requests (and View Code) omit it. */
  streamRefused: false,
  /** AbortController of the request in flight, or null. */
  running: null,
  /** Finished images: {src, seed, format}. */
  results: [],
  selected: -1,
  /** The image being edited: {blob, url, width, height}. */
  source: null,
  codeKind: 'curl',
};

const painter = new MaskPainter($('mask-canvas'));

// ---- small helpers -------------------------------------------------------------------------------

function storageGet(key) {
  try {
    return window.localStorage.getItem(key) || '';
  } catch (_) {
    return '';
  }
}

function storageSet(key, value) {
  try {
    if (value) window.localStorage.setItem(key, value);
    else window.localStorage.removeItem(key);
  } catch (_) {
    // storage disabled: the key lives for this page only
  }
}

function fillSelect(select, values, selected, label) {
  select.textContent = '';
  for (const value of values) {
    const option = document.createElement('option');
    option.value = value;
    option.textContent = label ? label(value) : value;
    select.appendChild(option);
  }
  if (selected !== undefined) select.value = selected;
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function formatSeconds(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 10) return seconds.toFixed(1) + ' s';
  if (seconds < 90) return Math.round(seconds) + ' s';
  return Math.floor(seconds / 60) + ' min ' + Math.round(seconds % 60) + ' s';
}

function imageSource(data) {
  if (data.b64_json) return 'data:' + (MIME_TYPES[data.output_format] || 'image/png') + ';base64,' + data.b64_json;
  return data.url || '';
}

function downloadUrl(url, filename) {
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.rel = 'noopener';
  document.body.appendChild(link);
  link.click();
  link.remove();
}

// ---- errors and progress -------------------------------------------------------------------------

function showError(error) {
  const box = $('error');
  box.textContent = '';
  const title = document.createElement('strong');
  title.textContent = 'Error';
  const message = document.createElement('span');
  message.id = 'error-message';
  message.setAttribute('data-testid', 'error-message');
  let text = error && error.message ? error.message : String(error);
  if (error instanceof ApiError) {
    if (error.retryAfter) text += ' Try again in ' + error.retryAfter + ' s.';
    box.dataset.status = String(error.status);
    box.dataset.code = error.code || '';
  } else {
    box.dataset.status = '';
    box.dataset.code = error && error.name === 'InputError' ? 'input_error' : '';
  }
  message.textContent = text;
  const detail = document.createElement('span');
  detail.className = 'muted';
  if (error instanceof ApiError && error.status) detail.textContent = 'HTTP ' + error.status + (error.code ? ' · ' + error.code : '') + (error.param ? ' · ' + error.param : '');
  box.append(title, ' ', message, ' ', detail);
  box.hidden = false;
}

function hideError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function showProgress(progress) {
  $('progress').hidden = false;
  const position = progress.queue_position;
  const queued = typeof position === 'number' && position > 0;
  $('queue-position').textContent = queued ? 'Queue position ' + position : '';
  $('step').textContent = progress.total ? 'Step ' + progress.step + ' / ' + progress.total : 'Waiting…';
  const eta = typeof progress.eta_seconds === 'number' ? formatSeconds(progress.eta_seconds) : '';
  $('eta').textContent = eta ? 'ETA ' + eta : '';
  const bar = $('progress-bar');
  if (progress.total) bar.value = Math.min(1, progress.step / progress.total);
  else bar.removeAttribute('value');
}

function hideProgress() {
  $('progress').hidden = true;
}

// ---- API key and models --------------------------------------------------------------------------

function currentKey() {
  return $('api-key').value.trim();
}

function updateKeyStatus(text) {
  $('api-key-status').textContent = text;
}

function currentModel() {
  const id = $('model').value;
  return state.models.find((model) => model.id === id) || null;
}

async function loadModels() {
  const apiKey = currentKey();
  if (!apiKey) return;
  updateKeyStatus('Loading models…');
  try {
    const models = await fetchModels(apiKey);
    // Only checkpoints can be asked for images; LoRAs, VAEs and embeddings are add-ons (the pickers).
    state.models = models.filter((model) => !model.kind || model.kind === 'checkpoint');
    fillAddonPickers(models);
    const select = $('model');
    fillSelect(select, state.models.map((model) => model.id));
    if (state.models.length === 0) fillSelect(select, [''], '', () => '(no models)');
    const remembered = storageGet(MODEL_STORAGE);
    if (state.models.some((model) => model.id === remembered)) select.value = remembered;
    updateKeyStatus('Key saved · ' + state.models.length + (state.models.length === 1 ? ' model' : ' models'));
    updateSamplers();
    hideError();
  } catch (error) {
    state.models = [];
    fillSelect($('model'), [''], '', () => '(could not load models)');
    updateKeyStatus('');
    showError(error);
  }
  updateSizes();
}

// ---- add-ons -------------------------------------------------------------------------------------

/** An add-on's label in a picker: its id, the architecture it fits, or why it cannot be used. */
function addonLabel(addon) {
  if (addon.error) return addon.id + ' (unusable: ' + addon.error + ')';
  return addon.architecture ? addon.id + ' · ' + addon.architecture : addon.id;
}

/**
 * The Background picker: OpenAI's auto / opaque / transparent; transparent needs a background-removal model, so it
 * is disabled (and says why) unless the server lists a usable model of kind "matting".
 */
function fillBackgrounds(hasMatting) {
  const select = $('background');
  const previous = select.value;
  fillSelect(select, CONFIG.backgrounds, 'auto', (value) => (value === 'transparent' && !hasMatting ? 'transparent (no matting model)' : value));
  for (const option of select.options) option.disabled = option.value === 'transparent' && !hasMatting;
  if (previous && !(previous === 'transparent' && !hasMatting) && CONFIG.backgrounds.includes(previous)) select.value = previous;
}

function fillAddonPickers(models) {
  const usable = (kind) => models.filter((model) => model.kind === kind && !model.error);
  fillBackgrounds(usable('matting').length > 0);
  state.addons = { lora: usable('lora'), textualinversion: usable('textualinversion'), vae: usable('vae') };
  const label = (kind) => (id) => addonLabel(state.addons[kind].find((addon) => addon.id === id) || { id: id });
  fillSelect($('lora-name'), state.addons.lora.map((addon) => addon.id), undefined, label('lora'));
  if (state.addons.lora.length === 0) fillSelect($('lora-name'), [''], '', () => '(no LoRAs)');
  fillSelect($('embeddings'), state.addons.textualinversion.map((addon) => addon.id), undefined, label('textualinversion'));
  fillSelect($('vae'), [''].concat(state.addons.vae.map((addon) => addon.id)), '', (id) => (id ? label('vae')(id) : "(the model's own)"));
  state.loras = state.loras.filter((lora) => state.addons.lora.some((addon) => addon.id === lora.model_name));
  renderLoras();
}

function renderLoras() {
  const list = $('lora-list');
  list.textContent = '';
  state.loras.forEach((lora, index) => {
    const item = document.createElement('li');
    const text = document.createElement('span');
    text.textContent = lora.model_name + ' × ' + lora.strength;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = 'Remove';
    remove.setAttribute('aria-label', 'Remove LoRA ' + lora.model_name);
    remove.addEventListener('click', () => {
      state.loras.splice(index, 1);
      renderLoras();
    });
    item.append(text, remove);
    list.appendChild(item);
  });
  $('lora-add').disabled = state.addons.lora.length === 0 || state.loras.length >= CONFIG.maxAddons;
}

function addLora() {
  const name = $('lora-name').value;
  if (!name || state.loras.length >= CONFIG.maxAddons) return;
  state.loras.push({ model_name: name, strength: $('lora-strength').value });
  renderLoras();
}

function saveKey(event) {
  if (event) event.preventDefault();
  const apiKey = currentKey();
  storageSet(KEY_STORAGE, apiKey);
  if (apiKey) loadModels();
  else updateKeyStatus('');
}

function forgetKey() {
  storageSet(KEY_STORAGE, '');
  $('api-key').value = '';
  state.models = [];
  fillSelect($('model'), [''], '', () => '(enter an API key)');
  updateKeyStatus('Key removed');
  updateSizes();
}

/** Sizes for the selected model (native size selected); in Edit mode the uploaded image's size. */
// Models that accept only some samplers (flow-matching FLUX.1 / SD 3.x list theirs as canonical ids) offer only
// those; the choice is kept when it still applies.
function updateSamplers() {
  const model = currentModel();
  const select = $('sample_method');
  const previous = select.value;
  const allowed = model && Array.isArray(model.samplers)
    ? CONFIG.sampleMethods.filter((name) => model.samplers.includes(CONFIG.sampleMethodIds[name]))
    : CONFIG.sampleMethods;
  const choice = allowed.includes(previous) ? previous : allowed.includes(CONFIG.defaults.sample_method) ? CONFIG.defaults.sample_method : allowed[0];
  fillSelect(select, allowed, choice);
}

function updateSizes() {
  const select = $('size');
  const limit = $('size-limit');
  if (state.mode === 'edit' && state.source) {
    const value = state.source.width + 'x' + state.source.height;
    fillSelect(select, [value], value, (size) => size);
    select.disabled = true;
    limit.textContent = 'Edits keep the size of the uploaded image (' + value + ').';
    return;
  }
  select.disabled = false;
  const model = currentModel();
  if (!model) {
    fillSelect(select, [''], '', () => 'model default');
    limit.textContent = '';
    return;
  }
  const options = sizeOptions(model);
  const native = options.find((option) => option.native);
  fillSelect(select, options.map((option) => option.value), native ? native.value : undefined, (value) =>
    value + (native && value === native.value ? ' (native)' : ''),
  );
  limit.textContent = 'At most ' + model.max_pixels.toLocaleString('en-US') + ' pixels for ' + model.id + '.';
}

// ---- modes and parameters ------------------------------------------------------------------------

function setMode(mode) {
  // Results belong to the mode that made them: an image generated before does not linger under the edit panel.
  if (state.mode !== undefined && state.mode !== mode) {
    clearResults();
    $('error').hidden = true;
  }
  state.mode = mode;
  $('mode-generate').setAttribute('aria-selected', String(mode === 'generate'));
  $('mode-edit').setAttribute('aria-selected', String(mode === 'edit'));
  $('edit-panel').hidden = mode !== 'edit';
  document.body.dataset.mode = mode;
  updateSizes();
}

function setParamStyle(style) {
  state.paramStyle = style;
  $('param-style-openai').setAttribute('aria-selected', String(style === 'openai'));
  $('param-style-advanced').setAttribute('aria-selected', String(style === 'advanced'));
  for (const section of document.querySelectorAll('[data-param-style]')) section.hidden = section.dataset.paramStyle !== style;
}

function currentInputs() {
  return {
    paramStyle: state.paramStyle,
    edit: state.mode === 'edit',
    stream: !state.streamRefused,
    model: $('model').value,
    prompt: $('prompt').value,
    n: $('n').value,
    size: $('size').value,
    response_format: $('response_format').value,
    quality: $('quality').value,
    style: $('style').value,
    output_format: $('output_format').value,
    background: $('background').value,
    sample_method: $('sample_method').value,
    schedule_method: $('schedule_method').value,
    sampling_steps: $('sampling_steps').value,
    guidance: $('guidance').value,
    cfg_scale: $('cfg_scale').value,
    negative_prompt: $('negative_prompt').value,
    seed: $('seed').value,
    preview: $('preview').value,
    strength: $('strength').value,
    loras: state.loras.slice(),
    embeddings: Array.from($('embeddings').selectedOptions).map((option) => option.value).filter(Boolean),
    vae: $('vae').value,
  };
}

/** The exact request for the current inputs: {path, body}. Throws InputError for a bad number. */
function currentRequest() {
  const body = buildRequestBody(currentInputs(), CONFIG);
  return { path: state.mode === 'edit' ? '/v1/images/edits' : '/v1/images/generations', body: body };
}

// ---- results -------------------------------------------------------------------------------------

function setMainImage(src, kind) {
  const image = $('result-image');
  image.src = src;
  image.dataset.kind = kind;
  image.hidden = false;
}

function selectResult(index) {
  const result = state.results[index];
  if (!result) return;
  state.selected = index;
  setMainImage(result.src, 'final');
  $('result-caption').textContent = 'Image ' + (index + 1) + ' of ' + state.results.length + (result.seed !== undefined ? ' · seed ' + result.seed : '');
  $('download-image').disabled = false;
  for (const [i, thumb] of Array.from($('result-thumbs').children).entries()) thumb.setAttribute('aria-pressed', String(i === index));
}

function addResult(data) {
  const result = { src: imageSource(data), seed: data.seed, format: data.output_format || 'png' };
  state.results.push(result);
  const thumb = document.createElement('button');
  thumb.type = 'button';
  thumb.className = 'thumb';
  thumb.setAttribute('data-testid', 'result-thumb');
  const image = document.createElement('img');
  image.src = result.src;
  image.alt = 'Image ' + state.results.length;
  thumb.appendChild(image);
  const index = state.results.length - 1;
  thumb.addEventListener('click', () => selectResult(index));
  $('result-thumbs').appendChild(thumb);
  selectResult(state.selected < 0 ? 0 : state.selected);
}

function clearResults() {
  state.results = [];
  state.selected = -1;
  const image = $('result-image');
  image.hidden = true;
  image.removeAttribute('src');
  image.dataset.kind = '';
  image.dataset.previews = '0';
  $('result-caption').textContent = '';
  $('result-thumbs').textContent = '';
  $('result').dataset.taskId = '';
  $('download-image').disabled = true;
}

function downloadImage() {
  const result = state.results[state.selected];
  if (!result) return;
  const extension = result.format === 'jpeg' ? 'jpg' : result.format;
  downloadUrl(result.src, 'image-' + (result.seed !== undefined ? result.seed : state.selected) + '.' + extension);
}

// ---- generate / edit -----------------------------------------------------------------------------

function setBusy(busy) {
  $('submit').disabled = busy;
  $('submit').textContent = busy ? 'Generating…' : 'Submit';
  document.body.dataset.busy = String(busy);
}

async function submit() {
  hideError();
  const apiKey = currentKey();
  if (!apiKey) return showError(new Error('Enter your API key at the top of the page first.'));
  if (apiKey !== storageGet(KEY_STORAGE)) storageSet(KEY_STORAGE, apiKey);
  if ($('prompt').value.trim() === '') return showError(new Error('Write a prompt first (or press Random prompt).'));
  if (state.mode === 'edit' && !state.source) return showError(new Error('Upload the image to edit first.'));
  let request;
  try {
    request = currentRequest();
  } catch (error) {
    return showError(error);
  }
  if (state.running) state.running.abort();
  const controller = new AbortController();
  state.running = controller;
  clearResults();
  setBusy(true);
  showProgress({ step: 0, total: 0, queue_position: null });

  let payload;
  if (state.mode === 'edit') {
    const form = new FormData();
    form.append('image', state.source.blob, 'source.png');
    // Nothing painted = the whole image is repainted: then no mask at all (OpenAI semantics).
    if (painter.hasPaint()) form.append('mask', await painter.toOpenAiMaskBlob(), 'mask.png');
    for (const field of editFormFields(request.body)) form.append(field[0], field[1]);
    payload = { kind: 'form', form: form };
  } else {
    payload = { kind: 'json', body: request.body };
  }

  let previews = 0;
  const handlers = {
    onProgress: (progress) => {
      if (state.running === controller) showProgress(progress);
    },
    onPreview: (preview) => {
      if (state.running !== controller || state.results.length > 0 || !preview.b64_json) return;
      previews += 1;
      setMainImage(imageSource(preview), 'preview');
      $('result-image').dataset.previews = String(previews);
      $('result-caption').textContent = 'Preview ' + previews;
    },
    onImage: (image) => {
      if (state.running === controller) addResult(image);
    },
  };
  try {
    const outcome = await sendImageRequest({
      path: request.path,
      apiKey: apiKey,
      payload: payload,
      outputFormat: bodyOutputFormat(request.body),
      handlers: handlers,
      signal: controller.signal,
    });
    if (outcome.streamRefused) state.streamRefused = true;
    if (outcome.taskId) $('result').dataset.taskId = outcome.taskId;
    if (state.results.length > 0) selectResult(state.selected);
    if (outcome.taskId) $('result-caption').textContent += ' · task ' + outcome.taskId;
  } catch (error) {
    if (error && error.name === 'AbortError') return;
    if (state.running === controller) {
      // A failed request leaves no half-finished preview behind.
      if (state.results.length === 0) clearResults();
      showError(error);
    }
  } finally {
    if (state.running === controller) {
      state.running = null;
      setBusy(false);
      hideProgress();
    }
  }
}

function clearAll() {
  if (state.running) {
    state.running.abort();
    state.running = null;
    setBusy(false);
  }
  $('prompt').value = '';
  clearResults();
  hideError();
  hideProgress();
  $('prompt').focus();
}

// ---- edit mode: upload and mask ------------------------------------------------------------------

function canvasToPng(canvas) {
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('The browser could not encode the image.'))), 'image/png');
  });
}

async function uploadImage(file) {
  if (!file) return;
  hideError();
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (_) {
    return showError(new Error('Could not read ' + file.name + ' as an image (PNG, JPEG or WebP).'));
  }
  const model = currentModel();
  const fit = fitEditSize(bitmap.width, bitmap.height, model ? model.max_pixels : FALLBACK_MAX_PIXELS);
  const canvas = document.createElement('canvas');
  canvas.width = fit.width;
  canvas.height = fit.height;
  canvas.getContext('2d').drawImage(bitmap, 0, 0, fit.width, fit.height);
  bitmap.close();
  const blob = await canvasToPng(canvas);
  if (state.source) URL.revokeObjectURL(state.source.url);
  state.source = { blob: blob, url: URL.createObjectURL(blob), width: fit.width, height: fit.height };
  $('edit-source').src = state.source.url;
  $('edit-stage').hidden = false;
  $('edit-stage').style.aspectRatio = fit.width + ' / ' + fit.height;
  $('edit-stage').style.maxWidth = fit.width + 'px';
  painter.reset(fit.width, fit.height);
  $('edit-note').textContent = fit.resized
    ? 'Resized to ' + fit.width + 'x' + fit.height + ' to fit the model. Paint the area to change; nothing painted = the whole image.'
    : fit.width + 'x' + fit.height + '. Paint the area to change; nothing painted = the whole image.';
  updateSizes();
}

function setTool(tool) {
  painter.setTool(tool);
  $('tool-brush').setAttribute('aria-pressed', String(tool === 'brush'));
  $('tool-eraser').setAttribute('aria-pressed', String(tool === 'eraser'));
}

async function saveMask() {
  if (!state.source) return;
  const blob = await painter.toSavedMaskBlob();
  const url = URL.createObjectURL(blob);
  downloadUrl(url, 'mask.png');
  // Revoking at once can cancel the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function onMaskChange(event) {
  $('mask-undo').disabled = event.detail.strokes === 0;
  $('mask-clear').disabled = event.detail.strokes === 0;
  $('save-mask').disabled = !state.source;
  $('mask-canvas').dataset.painted = String(event.detail.painted);
}

// ---- View Code -----------------------------------------------------------------------------------

function renderCode() {
  for (const tab of $('code-tabs').children) tab.setAttribute('aria-selected', String(tab.dataset.kind === state.codeKind));
  let text;
  try {
    const request = currentRequest();
    const model = currentModel();
    const snippets = buildSnippets(
      {
        origin: window.location.origin,
        path: request.path,
        body: request.body,
        edit: state.mode === 'edit' ? { hasMask: painter.hasPaint() } : null,
      },
      CONFIG,
      model ? model.native_size[0] + 'x' + model.native_size[1] : '',
    );
    text = snippets[state.codeKind];
  } catch (error) {
    text = '# ' + error.message;
  }
  $('code-text').textContent = text;
  $('code-copied').textContent = '';
}

function openCode() {
  renderCode();
  $('code-dialog').showModal();
}

async function copyCode() {
  const text = $('code-text').textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // Older browsers or no clipboard permission: copy the selected text the old way.
    const range = document.createRange();
    range.selectNodeContents($('code-text'));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand('copy');
  }
  $('code-copied').textContent = 'Copied';
}

// ---- start ---------------------------------------------------------------------------------------

function init() {
  const defaults = CONFIG.defaults;
  $('n').max = String(CONFIG.maxImages);
  $('n').value = String(defaults.n);
  $('prompt').maxLength = CONFIG.maxPromptLength;
  fillSelect($('response_format'), CONFIG.responseFormats, defaults.response_format);
  fillSelect($('quality'), CONFIG.qualities, defaults.quality);
  fillSelect($('style'), CONFIG.styles, defaults.style);
  fillSelect($('output_format'), CONFIG.outputFormats, defaults.output_format);
  fillBackgrounds(false);
  fillSelect($('sample_method'), CONFIG.sampleMethods, defaults.sample_method);
  fillSelect($('schedule_method'), CONFIG.scheduleMethods, defaults.schedule_method);
  fillSelect($('preview'), CONFIG.previews, defaults.preview, capitalise);
  $('sampling_steps').value = String(defaults.sampling_steps);
  $('guidance').value = '';
  $('guidance').placeholder = String(defaults.guidance) + ' (FLUX-class models only)';
  $('cfg_scale').value = String(defaults.cfg_scale);
  $('strength').value = String(defaults.strength);

  for (const kind of SNIPPET_KINDS) {
    const tab = document.createElement('button');
    tab.type = 'button';
    tab.id = 'code-tab-' + kind.id;
    tab.setAttribute('data-testid', 'code-tab-' + kind.id);
    tab.setAttribute('role', 'tab');
    tab.dataset.kind = kind.id;
    tab.textContent = kind.label;
    tab.addEventListener('click', () => {
      state.codeKind = kind.id;
      renderCode();
    });
    $('code-tabs').appendChild(tab);
  }

  $('api-key-form').addEventListener('submit', saveKey);
  $('api-key-forget').addEventListener('click', forgetKey);
  $('model').addEventListener('change', () => {
    storageSet(MODEL_STORAGE, $('model').value);
    updateSizes();
    updateSamplers();
  });
  $('mode-generate').addEventListener('click', () => setMode('generate'));
  $('mode-edit').addEventListener('click', () => setMode('edit'));
  $('param-style-openai').addEventListener('click', () => setParamStyle('openai'));
  $('param-style-advanced').addEventListener('click', () => setParamStyle('advanced'));
  $('random-prompt').addEventListener('click', () => {
    $('prompt').value = pickRandomPrompt(Math.random, $('prompt').value);
  });
  $('submit').addEventListener('click', submit);
  $('lora-add').addEventListener('click', addLora);
  $('prompt').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) submit();
  });
  $('clear').addEventListener('click', clearAll);
  $('download-image').addEventListener('click', downloadImage);
  $('view-code').addEventListener('click', openCode);
  $('code-copy').addEventListener('click', copyCode);
  $('code-close').addEventListener('click', () => $('code-dialog').close());
  $('edit-upload').addEventListener('change', (event) => uploadImage(event.target.files[0]));
  $('brush-size').addEventListener('input', () => {
    painter.setBrushSize($('brush-size').value);
    $('brush-size-value').textContent = $('brush-size').value + ' px';
  });
  $('tool-brush').addEventListener('click', () => setTool('brush'));
  $('tool-eraser').addEventListener('click', () => setTool('eraser'));
  $('mask-undo').addEventListener('click', () => painter.undo());
  $('mask-clear').addEventListener('click', () => painter.clear());
  $('save-mask').addEventListener('click', saveMask);
  $('mask-canvas').addEventListener('maskchange', onMaskChange);

  painter.setBrushSize($('brush-size').value);
  setMode('generate');
  setParamStyle('openai');
  clearResults();
  $('api-key').value = storageGet(KEY_STORAGE);
  if (currentKey()) loadModels();
  else updateKeyStatus('');
  document.body.dataset.ready = 'true';
}

init();
`;
