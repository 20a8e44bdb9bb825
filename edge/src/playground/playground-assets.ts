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

/**
 * The files under /playground/<name>, by name. The page (page-html.ts) loads styles.css and main.js;
 * main.js imports the other modules by relative URL, so the names here are the import specifiers.
 */
export const PLAYGROUND_ASSETS: Readonly<Record<string, PlaygroundAsset>> = {
  'styles.css': { contentType: 'text/css; charset=utf-8', body: PAGE_CSS },
  'main.js': { contentType: JAVASCRIPT, body: MAIN_JS },
  'config.js': { contentType: JAVASCRIPT, body: CONFIG_JS },
  'api-client.js': { contentType: JAVASCRIPT, body: API_CLIENT_JS },
  'sse-reader.js': { contentType: JAVASCRIPT, body: SSE_READER_JS },
  'request-builder.js': { contentType: JAVASCRIPT, body: REQUEST_BUILDER_JS },
  'code-snippets.js': { contentType: JAVASCRIPT, body: CODE_SNIPPETS_JS },
  'mask-painter.js': { contentType: JAVASCRIPT, body: MASK_PAINTER_JS },
  'random-prompts.js': { contentType: JAVASCRIPT, body: RANDOM_PROMPTS_JS },
};
