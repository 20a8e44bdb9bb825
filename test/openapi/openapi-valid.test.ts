/**
 * /openapi.json is a valid OpenAPI 3.1 document: checked against the official 3.1 JSON Schemas by
 * @seriousme/openapi-schema-validator (ajv, strict about unknown keywords such as 3.2's `itemSchema`).
 */
import { resolve } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { beforeAll, describe, expect, it } from 'vitest';

// ajv compiles schemas with new Function, which workerd forbids, so this runs in Node. The document builder
// is pure, but its imports are Worker-typed (edge/tsconfig.json checks them), hence the untyped import.
type BuildDocument = (serverUrl?: string) => Record<string, unknown>;
let buildOpenApiDocument: BuildDocument;
beforeAll(async () => {
  const modulePath = resolve(import.meta.dirname, '../../edge/src/openapi/openapi-document.ts');
  ({ buildOpenApiDocument } = (await import(/* @vite-ignore */ modulePath)) as { buildOpenApiDocument: BuildDocument });
});

describe('the OpenAPI document', () => {
  it('validates as OpenAPI 3.1', async () => {
    const document = buildOpenApiDocument('https://api.example.com');
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)?.slice(0, 4000)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('the validator refuses a 3.2-only keyword in a 3.1 document (the check can fail)', async () => {
    const document = buildOpenApiDocument() as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, object> }> }>> };
    const content = document.paths['/v1/images/generations'].post.responses['200'].content!;
    content['text/event-stream'] = { ...content['text/event-stream'], itemSchema: { type: 'object' } };
    expect((await new Validator().validate(structuredClone(document))).valid).toBe(false);
  });

  it('documents streaming on every route that streams, and lists the async API required fields', () => {
    const document = buildOpenApiDocument() as { paths: Record<string, Record<string, { description: string; responses: Record<string, { content?: Record<string, { 'x-sse-events'?: object }> }> }>> };
    for (const [path, events] of [
      ['/v1/images/generations', 'image_generation.completed'],
      ['/api/images/generations', 'image_generation.completed'],
      ['/v1/images/edits', 'image_edit.completed'],
      ['/v1/images/variations', 'image_generation.completed'],
    ]) {
      const content = document.paths[path].post.responses['200'].content!;
      expect(Object.keys(content), path).toEqual(['application/json', 'text/event-stream']);
      expect(Object.keys(content['text/event-stream']['x-sse-events']!), path).toContain(events);
    }
    expect(document.paths['/v1/tasks/{id}/events'].get.responses['200'].content!['text/event-stream']).toBeDefined();
    expect(document.paths['/v3/async/txt2img'].post.description).toContain(
      'Required in `request`: model_name, prompt, width, height, image_num. Also required: steps, guidance_scale, sampler_name, except for models with per-model defaults',
    );
  });
});
