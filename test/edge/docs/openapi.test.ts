import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { MAX_IMAGES_PER_REQUEST, MAX_PROMPT_LENGTH } from '@image-api/shared/api/openai-images';
import { ASYNC_MAX_IMAGES } from '@image-api/shared/api/async-tasks';
import { buildApp } from '../../../edge/src/app';
import { buildOpenApiDocument } from '../../../edge/src/openapi/openapi-document';
import { renderDocsHtml } from '../../../edge/src/openapi/docs-page';

type Json = Record<string, any>;

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** The (method, OpenAPI path) of every route app.ts mounts (middleware excluded). */
function mountedRoutes(): { method: string; path: string }[] {
  const seen = new Set<string>();
  const routes: { method: string; path: string }[] = [];
  for (const route of buildApp().routes) {
    if (route.method === 'ALL') continue; // app.use middleware
    let path = route.path
      .replace(/\/\*$/, '/{key}')
      .replace(/:([A-Za-z_]+)/g, '{$1}');
    if (path.length > 1) path = path.replace(/\/+$/, '');
    const entry = `${route.method.toLowerCase()} ${path}`;
    if (seen.has(entry)) continue;
    seen.add(entry);
    routes.push({ method: route.method.toLowerCase(), path });
  }
  return routes;
}

/** Every `$ref` string anywhere in the value. */
function refsIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) refsIn(item, out);
  else if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (key === '$ref' && typeof child === 'string') out.push(child);
      else refsIn(child, out);
    }
  }
  return out;
}

function resolvePointer(document: Json, ref: string): unknown {
  let node: unknown = document;
  for (const part of ref.slice(2).split('/')) node = node && typeof node === 'object' ? (node as Json)[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  return node;
}

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3.1 document with info, bearer auth, paths and component schemas', async () => {
    const response = await exports.default.fetch('https://edge.test/openapi.json');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    const document = (await response.json()) as Json;
    expect(document.openapi).toMatch(/^3\.1\.\d+$/);
    expect(document.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(document.components.securitySchemes.bearerAuth).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
    expect(Object.keys(document.components.schemas).length).toBeGreaterThanOrEqual(10);
    for (const name of ['ErrorBody', 'ImageGenerationRequest', 'ImagesResponse', 'ModelList', 'Task', 'AsyncTaskResult', 'Img2ImgRequest']) {
      expect(document.components.schemas[name], name).toBeDefined();
    }
  });

  it('has every route the app mounts, with the right method', () => {
    const document = buildOpenApiDocument() as Json;
    const routes = mountedRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(15);
    const missing = routes.filter(({ method, path }) => !document.paths[path]?.[method]).map(({ method, path }) => `${method} ${path}`);
    expect(missing).toEqual([]);
    // The planned public paths are there (also while a route module is still a placeholder).
    for (const path of ['/v1/images/generations', '/api/images/generations', '/v1/images/edits', '/v1/images/variations', '/v1/img2img', '/v1/models', '/v1/tasks/{id}', '/v1/tasks/{id}/events', '/v3/async/txt2img', '/v3/async/img2img', '/v3/async/inpainting', '/v3/async/task-result', '/v3/model', '/v1/files/{key}']) {
      expect(document.paths[path], path).toBeDefined();
    }
  });

  it('is internally consistent: refs resolve, path parameters are declared, operation ids unique, responses present', () => {
    const document = buildOpenApiDocument() as Json;
    const unresolved = refsIn(document).filter((ref) => !ref.startsWith('#/') || resolvePointer(document, ref) === undefined);
    expect(unresolved).toEqual([]);
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(document.paths as Json)) {
      const templateParams = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const method of METHODS) {
        const op = (item as Json)[method];
        if (!op) continue;
        expect(ids.has(op.operationId), `duplicate ${op.operationId}`).toBe(false);
        ids.add(op.operationId);
        expect(Object.keys(op.responses ?? {}).length, `${method} ${path}`).toBeGreaterThan(0);
        const params = (op.parameters ?? []).map((p: Json) => (p.$ref ? resolvePointer(document, p.$ref) : p) as Json);
        const declared = params.filter((p: Json) => p.in === 'path').map((p: Json) => p.name).sort();
        expect(declared, `${method} ${path}`).toEqual(templateParams);
        for (const p of params) expect(['path', 'query', 'header', 'cookie']).toContain(p.in);
        const secured = op.security === undefined || op.security.length > 0;
        const bearerFree = ['/healthz', '/openapi.json', '/docs', '/docs/{file}', '/', '/playground', '/playground/{file}', '/v1/files/{key}'];
        expect(secured, `${method} ${path} auth`).toBe(!bearerFree.includes(path));
      }
    }
  });

  it('request and response schemas come from the zod schemas (limits, defaults, required fields)', () => {
    const schemas = (buildOpenApiDocument() as Json).components.schemas;
    const generation = schemas.ImageGenerationRequest;
    expect(generation.required).toEqual(['prompt']);
    expect(generation.properties.n).toMatchObject({ type: 'integer', minimum: 1, maximum: MAX_IMAGES_PER_REQUEST, default: 1 });
    expect(generation.properties.prompt).toMatchObject({ maxLength: MAX_PROMPT_LENGTH });
    expect(generation.properties.response_format.enum).toEqual(['url', 'b64_json']);
    expect(generation.properties.link_ttl_seconds).toMatchObject({ type: 'integer', minimum: 60 });
    expect(schemas.ErrorBody.properties.error.required.sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(schemas.AsyncTxt2imgBody.properties.request.properties.image_num).toMatchObject({ maximum: ASYNC_MAX_IMAGES });
    expect(schemas.ImagesResponse.properties.data.type).toBe('array');
  });

  it('documents the Idempotency-Key header and the error responses of the generation routes', () => {
    const document = buildOpenApiDocument() as Json;
    const op = document.paths['/v1/images/generations'].post;
    expect(op.parameters).toContainEqual({ $ref: '#/components/parameters/IdempotencyKey' });
    for (const status of ['400', '401', '404', '409', '422', '429', '503']) expect(op.responses[status], status).toBeDefined();
    expect(op.responses['200'].content['text/event-stream']).toBeDefined();
    expect(document.components.responses.Error429.headers['retry-after']).toBeDefined();
  });
});

describe('GET /docs', () => {
  it('renders the reference from the document: every path, schemas, no outside resources', async () => {
    const response = await exports.default.fetch('https://edge.test/docs');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await response.text();
    const document = buildOpenApiDocument() as Json;
    for (const path of Object.keys(document.paths)) expect(html, path).toContain(`<code class="path">${path.replace(/&/g, '&amp;')}</code>`);
    expect(html).toContain('id="createImage"');
    expect(html).toContain('<code class="prop">sample_method</code>');
    expect(html).toContain('<code class="prop">link_ttl_seconds</code>');
    expect(html).not.toMatch(/(src|href)="https?:/);

    const script = await exports.default.fetch('https://edge.test/docs/docs.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('javascript');
    expect(await script.text()).toContain("getElementById('filter')");
    const css = await exports.default.fetch('https://edge.test/docs/docs.css');
    expect(css.headers.get('content-type')).toContain('text/css');
    expect((await exports.default.fetch('https://edge.test/docs/nope.js')).status).toBe(404);
  });

  it('escapes text from the document', () => {
    const html = renderDocsHtml({
      openapi: '3.1.0',
      info: { title: '<script>alert(1)</script>', version: '1' },
      paths: { '/x': { get: { operationId: 'x"y', summary: '<img src=x onerror=alert(1)>', responses: { '200': { description: 'ok' } } } } },
    });
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('id="x&quot;y"');
  });
});
