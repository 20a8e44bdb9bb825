/**
 * The playground page (GET / and GET /playground). Static markup only: every script and style is a
 * same-origin module under /playground/ (no inline code, no CDN), and the selects are filled by
 * main.js from config.js and GET /v1/models. Every control has a stable id and a data-testid.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Image Playground</title>
  <link rel="icon" type="image/svg+xml" href="/playground/favicon.svg">
  <link rel="stylesheet" href="/playground/styles.css">
  <script type="module" src="/playground/main.js"></script>
</head>
<body>
  <header class="topbar">
    <h1>Image Playground</h1>
    <form id="api-key-form" class="api-key" data-testid="api-key-form" autocomplete="off">
      <label for="api-key">API key</label>
      <input id="api-key" data-testid="api-key" type="password" placeholder="paste your API key" spellcheck="false" aria-describedby="api-key-hint">
      <button id="api-key-save" data-testid="api-key-save" type="submit">Save key</button>
      <button id="api-key-forget" data-testid="api-key-forget" type="button">Forget</button>
      <span id="api-key-status" data-testid="api-key-status" class="muted"></span>
      <span id="api-key-hint" data-testid="api-key-hint" class="muted hint-line">Locally the key is printed by <code>npm start</code> ("Development API key"); otherwise <code>npm run keys -- create --name NAME</code>.</span>
    </form>
    <label class="model-picker" for="model">Model
      <select id="model" data-testid="model"><option value="">(enter an API key)</option></select>
    </label>
    <a id="docs-link" data-testid="docs-link" class="docs-link" href="/docs" target="_blank" rel="noopener">API docs</a>
  </header>

  <main class="layout">
    <section class="workspace" aria-label="Image">
      <div class="tabs" role="tablist" aria-label="Mode">
        <button id="mode-generate" data-testid="mode-generate" role="tab" type="button" aria-selected="true">Generate</button>
        <button id="mode-edit" data-testid="mode-edit" role="tab" type="button" aria-selected="false">Edit</button>
      </div>

      <div id="edit-panel" data-testid="edit-panel" class="edit-panel" hidden>
        <label class="upload">Image to edit
          <input id="edit-upload" data-testid="edit-upload" type="file" accept="image/png,image/jpeg,image/webp">
        </label>
        <p id="edit-note" data-testid="edit-note" class="muted">Upload an image, then paint the area to change. Nothing painted = the whole image changes.</p>
        <div id="edit-stage" data-testid="edit-stage" class="stage" hidden>
          <img id="edit-source" data-testid="edit-source" alt="Image being edited">
          <canvas id="mask-canvas" data-testid="mask-canvas" width="0" height="0"></canvas>
        </div>
        <div class="brush-tools" role="toolbar" aria-label="Brush">
          <label for="brush-size">Brush size</label>
          <input id="brush-size" data-testid="brush-size" type="range" min="2" max="256" value="32">
          <output id="brush-size-value" data-testid="brush-size-value" for="brush-size">32 px</output>
          <button id="tool-brush" data-testid="tool-brush" type="button" aria-pressed="true">Brush</button>
          <button id="tool-eraser" data-testid="tool-eraser" type="button" aria-pressed="false">Eraser</button>
          <button id="mask-undo" data-testid="mask-undo" type="button" disabled>Undo</button>
          <button id="mask-clear" data-testid="mask-clear" type="button" disabled>Clear mask</button>
          <button id="save-mask" data-testid="save-mask" type="button" disabled>Save Mask</button>
        </div>
      </div>

      <div class="prompt-row">
        <label for="prompt" class="visually-hidden">Prompt</label>
        <textarea id="prompt" data-testid="prompt" rows="3" placeholder="Describe the image, e.g. a red apple on a wooden table"></textarea>
        <button id="random-prompt" data-testid="random-prompt" type="button" title="Random prompt">Random prompt</button>
      </div>

      <div class="actions">
        <button id="submit" data-testid="submit" type="button" class="primary">Submit</button>
        <button id="clear" data-testid="clear" type="button">Clear</button>
        <button id="view-code" data-testid="view-code" type="button">View Code</button>
        <button id="download-image" data-testid="download-image" type="button" disabled>Download Image</button>
      </div>

      <div id="error" data-testid="error" class="error" role="alert" hidden></div>

      <div id="progress" data-testid="progress" class="progress" aria-live="polite" hidden>
        <span id="queue-position" data-testid="queue-position"></span>
        <span id="step" data-testid="step"></span>
        <span id="eta" data-testid="eta"></span>
        <progress id="progress-bar" data-testid="progress-bar" max="1" value="0"></progress>
      </div>

      <figure id="result" data-testid="result" class="result">
        <img id="result-image" data-testid="result-image" alt="Generated image" hidden>
        <figcaption id="result-caption" data-testid="result-caption" class="muted"></figcaption>
      </figure>
      <div id="result-thumbs" data-testid="result-thumbs" class="thumbs"></div>
    </section>

    <aside class="params" aria-label="Parameters">
      <div class="tabs" role="tablist" aria-label="Parameter style">
        <button id="param-style-openai" data-testid="param-style-openai" role="tab" type="button" aria-selected="true">OpenAI compatible</button>
        <button id="param-style-advanced" data-testid="param-style-advanced" role="tab" type="button" aria-selected="false">Advanced</button>
      </div>

      <div class="fields">
        <label for="n">Counts (n)</label>
        <input id="n" data-testid="n" type="number" min="1" value="1">
        <label for="size">Size</label>
        <select id="size" data-testid="size"></select>
        <p id="size-limit" data-testid="size-limit" class="muted hint"></p>
      </div>

      <div id="params-openai" data-testid="params-openai" class="fields" data-param-style="openai">
        <label for="response_format">Response format</label>
        <select id="response_format" data-testid="response_format"></select>
        <label for="quality">Quality</label>
        <select id="quality" data-testid="quality"></select>
        <label for="style">Style</label>
        <select id="style" data-testid="style"></select>
        <label for="output_format">Output format</label>
        <select id="output_format" data-testid="output_format"></select>
        <label for="background">Background</label>
        <select id="background" data-testid="background"></select>
      </div>

      <div id="params-advanced" data-testid="params-advanced" class="fields" data-param-style="advanced" hidden>
        <label for="sample_method">Sample Method</label>
        <select id="sample_method" data-testid="sample_method"></select>
        <label for="schedule_method">Schedule Method</label>
        <select id="schedule_method" data-testid="schedule_method"></select>
        <label for="sampling_steps">Sampling Steps</label>
        <input id="sampling_steps" data-testid="sampling_steps" type="number" min="1" max="200">
        <label for="guidance">Guidance</label>
        <input id="guidance" data-testid="guidance" type="number" min="0" max="50" step="0.1">
        <label for="cfg_scale">CFG Scale</label>
        <input id="cfg_scale" data-testid="cfg_scale" type="number" min="0" max="50" step="0.1">
        <label for="negative_prompt">Negative Prompt</label>
        <textarea id="negative_prompt" data-testid="negative_prompt" rows="2"></textarea>
        <label for="seed">Seed</label>
        <input id="seed" data-testid="seed" type="text" inputmode="numeric" placeholder="random">
        <label for="preview">Preview</label>
        <select id="preview" data-testid="preview"></select>
        <label for="strength">Strength</label>
        <input id="strength" data-testid="strength" type="number" min="0" max="1" step="0.05">
        <p class="muted hint">Strength is the edit's denoise strength; it is sent in Edit mode only.</p>
        <label for="lora-name">LoRAs</label>
        <div class="addon-picker">
          <select id="lora-name" data-testid="lora-name"></select>
          <input id="lora-strength" data-testid="lora-strength" type="number" min="-4" max="4" step="0.05" value="1" aria-label="LoRA strength">
          <button id="lora-add" data-testid="lora-add" type="button">Add</button>
          <ul id="lora-list" data-testid="lora-list" class="addon-list"></ul>
        </div>
        <label for="embeddings">Embeddings</label>
        <select id="embeddings" data-testid="embeddings" multiple size="3"></select>
        <label for="vae">VAE</label>
        <select id="vae" data-testid="vae"></select>
        <p class="muted hint">Add-ons are the LoRAs, textual-inversion embeddings and VAEs the server lists (at most 5 LoRAs and 5 embeddings); pick ones made for the model's architecture. An embedding is used where its name appears in the prompt.</p>
      </div>
    </aside>
  </main>

  <dialog id="code-dialog" data-testid="code-dialog" class="code-dialog" aria-labelledby="code-title">
    <div class="code-head">
      <h2 id="code-title">View Code</h2>
      <div id="code-tabs" data-testid="code-tabs" class="tabs" role="tablist" aria-label="Language"></div>
    </div>
    <pre id="code-text" data-testid="code-text" class="code" tabindex="0"></pre>
    <div class="code-actions">
      <span id="code-copied" data-testid="code-copied" class="muted" aria-live="polite"></span>
      <button id="code-copy" data-testid="code-copy" type="button" class="primary">Copy</button>
      <button id="code-close" data-testid="code-close" type="button">Close</button>
    </div>
  </dialog>
</body>
</html>
`;
