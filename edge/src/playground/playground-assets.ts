import { PAGE_CSS } from './page-css';
import { CONFIG_JS } from './playground-config';
import { API_CLIENT_JS } from './scripts/api-client-js';
import { CODE_SNIPPETS_JS } from './scripts/code-snippets-js';
import { MAIN_JS } from './scripts/main-js';
import { MASK_PAINTER_JS } from './scripts/mask-painter-js';
import { RANDOM_PROMPTS_JS } from './scripts/random-prompts-js';
import { REQUEST_BUILDER_JS } from './scripts/request-builder-js';
import { SSE_READER_JS } from './scripts/sse-reader-js';

/** One static file of the playground: its Content-Type and text. */
export interface PlaygroundAsset {
  contentType: string;
  body: string;
}

const JAVASCRIPT = 'text/javascript; charset=utf-8';

/** The page's icon: a framed picture with a sun and hills, in the page's accent colours. */
const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">
<rect x="4" y="8" width="56" height="48" rx="8" fill="#2563eb"/>
<rect x="10" y="14" width="44" height="36" rx="4" fill="#dbeafe"/>
<circle cx="42" cy="24" r="6" fill="#f59e0b"/>
<path d="M10 44 L26 28 L38 40 L44 34 L54 44 L54 50 L10 50 Z" fill="#16a34a"/>
</svg>
`;

/**
 * The files under /playground/<name>, by name. The page (page-html.ts) loads styles.css and main.js;
 * main.js imports the other modules by relative URL, so the names here are the import specifiers.
 */
export const PLAYGROUND_ASSETS: Readonly<Record<string, PlaygroundAsset>> = {
  'styles.css': { contentType: 'text/css; charset=utf-8', body: PAGE_CSS },
  'favicon.svg': { contentType: 'image/svg+xml', body: FAVICON_SVG },
  'main.js': { contentType: JAVASCRIPT, body: MAIN_JS },
  'config.js': { contentType: JAVASCRIPT, body: CONFIG_JS },
  'api-client.js': { contentType: JAVASCRIPT, body: API_CLIENT_JS },
  'sse-reader.js': { contentType: JAVASCRIPT, body: SSE_READER_JS },
  'request-builder.js': { contentType: JAVASCRIPT, body: REQUEST_BUILDER_JS },
  'code-snippets.js': { contentType: JAVASCRIPT, body: CODE_SNIPPETS_JS },
  'mask-painter.js': { contentType: JAVASCRIPT, body: MASK_PAINTER_JS },
  'random-prompts.js': { contentType: JAVASCRIPT, body: RANDOM_PROMPTS_JS },
};
