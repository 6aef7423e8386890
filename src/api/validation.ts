import type { z } from 'zod';
import { problems, type FieldError } from './problem';

function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue): FieldError[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: [...issue.path, key].join('.'), message: 'unknown field' }));
    }
    const field = issue.path.length ? issue.path.join('.') : '(body)';
    return [{ field, message: issue.message }];
  });
}

/** Parses input with a schema or throws a 400 problem that names every bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what = 'body'): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors = fieldErrors(result.error);
  const first = errors[0];
  const detail = first ? `Invalid ${what}: ${first.field}: ${first.message}` : `Invalid ${what}`;
  throw problems.invalid(detail, errors);
}
