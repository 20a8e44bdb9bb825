/** Stylesheet /playground/styles.css: plain CSS, system fonts, no external resources. */
export const PAGE_CSS = `:root {
  --bg: #f6f7f9;
  --panel: #ffffff;
  --text: #1d2430;
  --muted: #667085;
  --line: #d7dce3;
  --accent: #2f5bea;
  --accent-text: #ffffff;
  --danger: #b42318;
  --danger-bg: #fef3f2;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--text);
  background: var(--bg);
}

* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; }
button, input, select, textarea { font: inherit; color: inherit; }
button {
  border: 1px solid var(--line);
  background: var(--panel);
  border-radius: 6px;
  padding: 0.4rem 0.8rem;
  cursor: pointer;
}
button:hover:not(:disabled) { border-color: var(--accent); }
button:disabled { opacity: 0.5; cursor: default; }
button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-text); }
button[aria-pressed="true"] { background: #e8eefc; border-color: var(--accent); }
input, select, textarea {
  border: 1px solid var(--line);
  border-radius: 6px;
  padding: 0.35rem 0.5rem;
  background: var(--panel);
  min-width: 0;
}
textarea { resize: vertical; }
.muted { color: var(--muted); font-size: 0.9em; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }

.topbar {
  display: flex;
  align-items: center;
  gap: 1rem;
  padding: 0.6rem 1.2rem;
  background: var(--panel);
  border-bottom: 1px solid var(--line);
  flex-wrap: wrap;
}
.topbar h1 { font-size: 1.15rem; margin: 0; }
.api-key { display: flex; align-items: center; gap: 0.4rem; flex-wrap: wrap; }
.api-key input { width: 16rem; }
/* The model picker sits at the top right. */
.model-picker { margin-left: auto; display: flex; align-items: center; gap: 0.4rem; font-weight: 600; }
.model-picker select { min-width: 12rem; font-weight: normal; }
.api-key .hint-line { flex-basis: 100%; }
.api-key code { font-size: 0.95em; }
.docs-link { font-weight: 600; color: var(--accent); }

.layout {
  display: grid;
  grid-template-columns: minmax(0, 1fr) 23rem;
  gap: 1rem;
  padding: 1rem 1.2rem;
  align-items: start;
}
@media (max-width: 800px) { .layout { grid-template-columns: 1fr; } }
.workspace, .params {
  background: var(--panel);
  border: 1px solid var(--line);
  border-radius: 10px;
  padding: 1rem;
  display: flex;
  flex-direction: column;
  gap: 0.8rem;
}

.tabs { display: flex; gap: 0.3rem; }
.tabs [role="tab"] { border-radius: 6px 6px 0 0; }
.tabs [role="tab"][aria-selected="true"] { background: var(--accent); border-color: var(--accent); color: var(--accent-text); }

.edit-panel { display: flex; flex-direction: column; gap: 0.6rem; }
.upload { display: flex; gap: 0.6rem; align-items: center; }
.stage {
  position: relative;
  width: 100%;
  background: repeating-conic-gradient(#eee 0% 25%, #fff 0% 50%) 50% / 16px 16px;
  /* An outline, not a border, so the canvas box is exactly the image size. */
  outline: 1px solid var(--line);
}
.stage img { display: block; width: 100%; height: 100%; user-select: none; -webkit-user-drag: none; }
.stage canvas {
  position: absolute;
  inset: 0;
  width: 100%;
  height: 100%;
  opacity: 0.55;
  cursor: crosshair;
  touch-action: none;
}
.brush-tools { display: flex; gap: 0.5rem; align-items: center; flex-wrap: wrap; }
.brush-tools output { min-width: 3.5rem; }

.prompt-row { display: flex; gap: 0.5rem; align-items: stretch; }
.prompt-row textarea { flex: 1; }
.actions { display: flex; gap: 0.5rem; flex-wrap: wrap; }

.error {
  border: 1px solid var(--danger);
  background: var(--danger-bg);
  color: var(--danger);
  border-radius: 6px;
  padding: 0.6rem 0.8rem;
}
.error .muted { margin-left: 0.4rem; }
.progress { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
.progress progress { flex: 1; min-width: 8rem; }

.result { margin: 0; display: flex; flex-direction: column; gap: 0.4rem; align-items: flex-start; }
.result img {
  max-width: 100%;
  max-height: 70vh;
  border: 1px solid var(--line);
  border-radius: 6px;
  image-rendering: auto;
}
.result img[data-kind="preview"] { outline: 3px dashed #f0ad4e; }
.thumbs { display: flex; gap: 0.4rem; flex-wrap: wrap; }
/* One image needs no picker. */
.thumbs:has(> :only-child) { display: none; }
.thumb { padding: 2px; }
.thumb img { display: block; width: 64px; height: 64px; object-fit: cover; }

.fields { display: grid; grid-template-columns: 8.5rem minmax(0, 1fr); gap: 0.45rem 0.6rem; align-items: center; }
.fields .hint { grid-column: 1 / -1; margin: 0; }
.addon-picker { display: flex; flex-wrap: wrap; gap: 0.35rem; align-items: center; }
.addon-picker select { flex: 1 1 8rem; min-width: 0; }
.addon-picker input { width: 4.5rem; }
.addon-list { flex-basis: 100%; list-style: none; margin: 0; padding: 0; display: grid; gap: 0.25rem; }
.addon-list li { display: flex; justify-content: space-between; gap: 0.4rem; align-items: center; }

.code-dialog {
  width: min(56rem, 94vw);
  border: 1px solid var(--line);
  border-radius: 10px;
  padding: 1rem;
}
.code-dialog::backdrop { background: rgba(16, 24, 40, 0.45); }
.code-head { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
.code-head h2 { margin: 0; font-size: 1.05rem; }
.code {
  background: #0f172a;
  color: #e2e8f0;
  padding: 0.8rem 1rem;
  border-radius: 6px;
  max-height: 60vh;
  overflow: auto;
  font: 0.85rem/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  white-space: pre;
}
.code-actions { display: flex; gap: 0.5rem; justify-content: flex-end; align-items: center; }
`;
