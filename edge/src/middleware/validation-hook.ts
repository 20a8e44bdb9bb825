import type { Context } from 'hono';
import type { $ZodIssue } from 'zod/v4/core';
import { invalidParameter } from '../lib/api-error';

/**
 * Our zValidator hook: a failed parse throws ApiError 400 `invalid_parameter` (or
 * `missing_parameter`) whose `param` is the first issue's dotted path ("size", "n", "prompt"),
 * so the error handler renders the shared error body instead of zod's raw output.
 * A body that is not an object at all gets param null.
 */
export function validationHook(
  result: { success: true } | { success: false; error: { issues: readonly $ZodIssue[] } },
  _c: Context,
): void {
  if (result.success) return;
  const issue = result.error.issues[0];
  const param = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  const missing = issue?.code === 'invalid_type' && /received undefined/.test(issue.message);
  const message = param ? `Invalid '${param}': ${issue.message}` : `Invalid request body: ${issue?.message ?? 'unknown error'}`;
  throw invalidParameter(param, message, missing ? 'missing_parameter' : 'invalid_parameter');
}
