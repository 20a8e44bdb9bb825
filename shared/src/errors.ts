import { z } from 'zod';

/** The one error body every public endpoint (and the GPU service) answers with (README "Public API"). */
export const ErrorTypeSchema = z.enum([
  'invalid_request_error',
  'authentication_error',
  'permission_error',
  'rate_limit_error',
  'not_found_error',
  'server_error',
]);
export type ErrorType = z.infer<typeof ErrorTypeSchema>;

export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    param: z.string().nullable(),
    type: ErrorTypeSchema,
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** Build an error body. `param` names the offending field (dotted path) or is null. */
export function errorBody(type: ErrorType, code: string, message: string, param: string | null = null): ErrorBody {
  return { error: { code, message, param, type } };
}
