import { z } from 'zod';

/** A JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1) as a plain object. */
export type JsonSchema = Record<string, unknown>;

/**
 * The JSON Schema of a zod schema, as OpenAPI 3.1 embeds it (zod v4 `z.toJSONSchema`, draft
 * 2020-12, without the `$schema` key).
 * @param io 'input' for request bodies/queries (what a client may send: defaults make fields
 *   optional, transforms show their input type), 'output' for responses (what the server sends).
 * Types JSON Schema cannot express (e.g. a transform's output) become `{}` (any) rather than throw.
 */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  return rest;
}

/**
 * Add (or replace) properties of an object schema, e.g. documentation-only fields a route reads
 * besides its zod schema. Returns a new schema; `required` names are appended.
 */
export function withProperties(schema: JsonSchema, properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema {
  const existing = (schema.properties as Record<string, JsonSchema> | undefined) ?? {};
  const requiredBefore = (schema.required as string[] | undefined) ?? [];
  return {
    ...schema,
    properties: { ...existing, ...properties },
    ...(requiredBefore.length + required.length > 0 ? { required: [...new Set([...requiredBefore, ...required])] } : {}),
  };
}
