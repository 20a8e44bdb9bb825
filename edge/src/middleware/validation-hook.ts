import type { Context } from 'hono';
import type { $ZodIssue } from 'zod/v4/core';
import { invalidParameter } from '../lib/api-error';

/**
 * Our zValidator hook: a failed parse throws ApiError 400 `invalid_parameter` (or
 * `missing_parameter`) whose `param` is the first issue's dotted path ("size", "n", "prompt"),
 * so the error handler renders the shared error body instead of zod's raw output. When required fields
 * are missing, the message names all of them at once (not one per attempt), and `param` is the first.
 * A body that is not an object at all gets param null.
 */
export function validationHook(
  result: { success: true } | { success: false; error: { issues: readonly $ZodIssue[] } },
  _c: Context,
): void {
  if (result.success) return;
  const pathOf = (issue: $ZodIssue) => issue.path.map(String).join('.');
  const isMissing = (issue: $ZodIssue) => issue.code === 'invalid_type' && issue.path.length > 0 && /received undefined/.test(issue.message);
  const missing = result.error.issues.filter(isMissing).map(pathOf);
  if (missing.length > 1) {
    throw invalidParameter(missing[0], `Missing required fields: ${missing.join(', ')}.`, 'missing_parameter');
  }
  const issue = result.error.issues[0];
  const param = issue && issue.path.length > 0 ? pathOf(issue) : null;
  const message = param ? `Invalid '${param}': ${issue.message}` : `Invalid request body: ${issue?.message ?? 'unknown error'}`;
  throw invalidParameter(param, message, issue && isMissing(issue) ? 'missing_parameter' : 'invalid_parameter');
}
