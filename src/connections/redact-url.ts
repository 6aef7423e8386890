/**
 * A connection URL fit for a message or a log: the password of its login, and a `password` query
 * parameter (libpq and pg take one there too), replaced by ***. Text that is not a URL is returned
 * as it is.
 */
export function redactUrl(value: string): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return value;
  }
  if (parsed.password) parsed.password = '***';
  if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
  return parsed.toString();
}
