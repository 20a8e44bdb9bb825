/**
 * The API reference page (GET /docs): server-rendered HTML of the OpenAPI document, so it reads
 * without JavaScript and never loads anything from outside (no CDN); a small script (docs.js) adds
 * a filter box and collapses the schema trees. Pure functions of the document.
 */

type Json = Record<string, unknown>;

/** Nesting depth at which schema trees stop (deeper objects show "…"). */
export const MAX_SCHEMA_DEPTH = 6;

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);
}

/** `code` spans for backticked parts of a description; everything else escaped. */
function prose(text: unknown): string {
  if (typeof text !== 'string') return '';
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Follow a local `#/components/...` reference. */
function resolve(document: Json, value: unknown): { node: Json; name: string | null } {
  if (isObject(value) && typeof value.$ref === 'string' && value.$ref.startsWith('#/')) {
    let node: unknown = document;
    for (const part of value.$ref.slice(2).split('/')) node = isObject(node) ? node[part] : undefined;
    return { node: isObject(node) ? node : {}, name: value.$ref.split('/').pop() ?? null };
  }
  return { node: isObject(value) ? value : {}, name: null };
}

/** A one-line type of a schema: "string", "integer 1..10", "png | jpeg", "array of object", … */
function typeLabel(schema: Json): string {
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if ('const' in schema) return `= ${JSON.stringify(schema.const)}`;
  const variants = (schema.anyOf ?? schema.oneOf) as Json[] | undefined;
  if (Array.isArray(variants)) return variants.map((v) => typeLabel(v)).join(' or ');
  let label = Array.isArray(schema.type) ? schema.type.join(' | ') : typeof schema.type === 'string' ? schema.type : 'any';
  if (label === 'array' && isObject(schema.items)) label = `array of ${typeLabel(schema.items)}`;
  const low = schema.minimum ?? schema.minLength ?? schema.minItems;
  const high = schema.maximum ?? schema.maxLength ?? schema.maxItems;
  const bound = (n: unknown) => (typeof n === 'number' && Math.abs(n) < 2 ** 52 ? String(n) : '');
  if (bound(low) || bound(high)) label += ` ${bound(low)}..${bound(high)}`;
  if (typeof schema.pattern === 'string') label += ` /${schema.pattern}/`;
  return label;
}

/** A schema as a nested definition list (object properties), with required marks and defaults. */
function schemaTree(document: Json, value: unknown, depth = 0, seen: ReadonlySet<string> = new Set()): string {
  const { node, name } = resolve(document, value);
  if (name && seen.has(name)) return `<span class="type">${escapeHtml(name)} (see above)</span>`;
  const nextSeen = name ? new Set([...seen, name]) : seen;
  const heading = name ? `<span class="ref">${escapeHtml(name)}</span> ` : '';
  const items = node.type === 'array' && isObject(node.items) ? resolve(document, node.items).node : null;
  const objectNode = isObject(node.properties) ? node : items && isObject(items.properties) ? items : null;
  if (!objectNode) {
    return `${heading}<span class="type">${escapeHtml(typeLabel(node))}</span>${node.description ? ` — ${prose(node.description)}` : ''}`;
  }
  if (depth >= MAX_SCHEMA_DEPTH) return `${heading}<span class="type">object …</span>`;
  const required = new Set(Array.isArray(objectNode.required) ? (objectNode.required as string[]) : []);
  const rows = Object.entries(objectNode.properties as Json).map(([property, raw]) => {
    const child = resolve(document, raw).node;
    const nested = isObject(child.properties) || (child.type === 'array' && isObject(child.items) && isObject(resolve(document, child.items).node.properties));
    const meta = [
      required.has(property) ? '<span class="req">required</span>' : '',
      'default' in child ? `default <code>${escapeHtml(JSON.stringify(child.default))}</code>` : '',
    ]
      .filter(Boolean)
      .join(' ');
    const body = nested
      ? `<details${depth < 1 ? ' open' : ''}><summary><span class="type">${escapeHtml(typeLabel(child))}</span> ${meta}</summary>${schemaTree(document, raw, depth + 1, nextSeen)}</details>`
      : `<span class="type">${escapeHtml(typeLabel(child))}</span> ${meta}${child.description ? `<div class="desc">${prose(child.description)}</div>` : ''}`;
    return `<li><code class="prop">${escapeHtml(property)}</code> ${body}</li>`;
  });
  const prefix = items ? `${heading}<span class="type">array of</span>` : heading;
  return `${prefix}<ul class="schema">${rows.join('')}</ul>`;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/** One operation's section. */
function operationSection(document: Json, path: string, method: string, op: Json): string {
  const id = typeof op.operationId === 'string' ? op.operationId : `${method}-${path}`;
  const secured = Array.isArray(op.security) ? op.security.length > 0 : true;
  const parameters = Array.isArray(op.parameters) ? op.parameters.map((p) => resolve(document, p).node) : [];
  const parameterRows = parameters
    .map(
      (p) =>
        `<tr><td><code>${escapeHtml(String(p.name))}</code></td><td>${escapeHtml(String(p.in))}</td><td>${p.required ? 'yes' : ''}</td>` +
        `<td><span class="type">${escapeHtml(typeLabel(resolve(document, p.schema).node))}</span></td><td>${prose(p.description)}</td></tr>`,
    )
    .join('');
  const body = resolve(document, op.requestBody).node;
  const bodyParts = isObject(body.content)
    ? Object.entries(body.content)
        .map(([type, media]) => `<h4>Request body <code>${escapeHtml(type)}</code></h4>${schemaTree(document, isObject(media) ? media.schema : {})}`)
        .join('')
    : '';
  const responses = isObject(op.responses)
    ? Object.entries(op.responses)
        .map(([status, raw]) => {
          const response = resolve(document, raw).node;
          const contents = isObject(response.content)
            ? Object.entries(response.content)
                .filter(([, media]) => isObject(media) && media.schema !== undefined)
                .map(([type, media]) => `<div class="media"><code>${escapeHtml(type)}</code> ${schemaTree(document, (media as Json).schema, 1)}</div>`)
                .join('')
            : '';
          return `<li><span class="status s${escapeHtml(status[0])}">${escapeHtml(status)}</span> ${prose(response.description)}${contents}</li>`;
        })
        .join('')
    : '';
  return (
    `<section class="op" id="${escapeHtml(id)}" data-search="${escapeHtml(`${method} ${path} ${String(op.summary ?? '')}`.toLowerCase())}">` +
    `<h3><span class="method ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> <code class="path">${escapeHtml(path)}</code>` +
    `${secured ? ' <span class="auth" title="Authorization: Bearer &lt;api key&gt;">Bearer</span>' : ''}</h3>` +
    `<p class="summary">${prose(op.summary)}</p><p>${prose(op.description)}</p>` +
    (parameterRows ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>type</th><th></th></tr>${parameterRows}</table>` : '') +
    bodyParts +
    `<h4>Responses</h4><ul class="responses">${responses}</ul></section>`
  );
}

/**
 * The whole reference page for an OpenAPI document: navigation by tag, one section per
 * operation (parameters, request body schemas, responses), links to /openapi.json.
 */
export function renderDocsHtml(document: Json): string {
  const info = isObject(document.info) ? document.info : {};
  const byTag = new Map<string, { path: string; method: string; op: Json }[]>();
  for (const [path, item] of Object.entries(isObject(document.paths) ? document.paths : {})) {
    if (!isObject(item)) continue;
    for (const method of METHODS) {
      const op = item[method];
      if (!isObject(op)) continue;
      const tag = Array.isArray(op.tags) && typeof op.tags[0] === 'string' ? op.tags[0] : 'Other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push({ path, method, op });
    }
  }
  const nav = [...byTag.entries()]
    .map(
      ([tag, ops]) =>
        `<h2>${escapeHtml(tag)}</h2><ul>` +
        ops
          .map(({ path, method, op }) => `<li><a href="#${escapeHtml(String(op.operationId))}"><span class="method ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> ${escapeHtml(path)}</a></li>`)
          .join('') +
        '</ul>',
    )
    .join('');
  const main = [...byTag.entries()]
    .map(([tag, ops]) => `<h2 class="tag">${escapeHtml(tag)}</h2>${ops.map(({ path, method, op }) => operationSection(document, path, method, op)).join('')}`)
    .join('');
  const title = escapeHtml(String(info.title ?? 'API reference'));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} — reference</title>
<link rel="stylesheet" href="/docs/docs.css">
<script type="module" src="/docs/docs.js"></script>
</head>
<body>
<header><h1>${title} <small>${escapeHtml(String(info.version ?? ''))} · OpenAPI ${escapeHtml(String(document.openapi ?? ''))}</small></h1>
<p>${prose(info.description)}</p>
<p><a href="/openapi.json">openapi.json</a> · <a href="/playground">playground</a> · <input id="filter" type="search" placeholder="Filter operations…" aria-label="Filter operations"></p></header>
<div class="layout"><nav>${nav}</nav><main>${main}</main></div>
</body>
</html>
`;
}

/** Stylesheet of the page (served as /docs/docs.css). */
export const DOCS_CSS = `
:root { color-scheme: light dark; --fg: #1d1f23; --muted: #5b6270; --line: #d9dde3; --bg: #fff; --code: #f3f4f6; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --muted: #9aa3af; --line: #333a44; --bg: #15181c; --code: #22262c; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 1rem 1.5rem; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 .25rem; font-size: 1.4rem; } header small { color: var(--muted); font-weight: normal; font-size: .9rem; }
#filter { padding: .3rem .5rem; min-width: 16rem; }
.layout { display: grid; grid-template-columns: 19rem 1fr; }
nav { border-right: 1px solid var(--line); padding: .5rem 1rem; position: sticky; top: 0; align-self: start; max-height: 100vh; overflow: auto; }
nav h2 { font-size: .85rem; text-transform: uppercase; color: var(--muted); margin: 1rem 0 .3rem; }
nav ul { list-style: none; margin: 0; padding: 0; } nav a { display: block; padding: .1rem 0; color: inherit; text-decoration: none; font-size: .9rem; }
main { padding: 0 1.5rem 4rem; min-width: 0; }
h2.tag { margin-top: 2rem; border-bottom: 1px solid var(--line); }
.op { border: 1px solid var(--line); border-radius: 6px; padding: .5rem 1rem; margin: 1rem 0; }
.op h3 { margin: .3rem 0; font-size: 1.05rem; } .summary { font-weight: 600; }
.method { display: inline-block; min-width: 3.6rem; text-align: center; border-radius: 4px; padding: 0 .3rem; font: 600 .75rem/1.6 ui-monospace, monospace; color: #fff; background: #6b7280; }
.method.get { background: #2563eb; } .method.post { background: #059669; } .method.delete { background: #dc2626; }
.auth { font-size: .7rem; border: 1px solid var(--line); border-radius: 4px; padding: 0 .3rem; color: var(--muted); }
code { background: var(--code); border-radius: 3px; padding: 0 .2rem; font: .85em ui-monospace, monospace; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; } td, th { border-top: 1px solid var(--line); padding: .2rem .4rem; text-align: left; vertical-align: top; }
ul.schema { list-style: none; padding-left: 1rem; border-left: 2px solid var(--line); margin: .2rem 0; }
.type { color: var(--muted); font: .8rem ui-monospace, monospace; } .req { color: #dc2626; font-size: .75rem; } .ref { font-weight: 600; }
.desc { color: var(--muted); font-size: .85rem; } .status { font: 600 .85rem ui-monospace, monospace; } .s2 { color: #059669; } .s4 { color: #d97706; } .s5 { color: #dc2626; }
ul.responses { padding-left: 1rem; } .media { margin: .2rem 0 .4rem; }
.hidden { display: none; }
@media (max-width: 800px) { .layout { grid-template-columns: 1fr; } nav { position: static; max-height: none; border-right: 0; } }
`;

/** Script of the page (served as /docs/docs.js): the filter box. The page works without it. */
export const DOCS_JS = `
const filter = document.getElementById('filter');
const sections = Array.from(document.querySelectorAll('section.op'));
const links = Array.from(document.querySelectorAll('nav a'));
function apply() {
  const words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
  const visible = new Set();
  for (const section of sections) {
    const match = words.every((word) => section.dataset.search.includes(word));
    section.classList.toggle('hidden', !match);
    if (match) visible.add(section.id);
  }
  for (const link of links) link.parentElement.classList.toggle('hidden', !visible.has(link.getAttribute('href').slice(1)));
}
if (filter) {
  filter.addEventListener('input', apply);
  document.addEventListener('keydown', (event) => {
    if (event.key === '/' && document.activeElement !== filter) {
      event.preventDefault();
      filter.focus();
    }
  });
}
`;
