import { existsSync } from 'node:fs';

/**
 * The Chromium the browser tests drive. The tests are part of the suite and never skipped: without
 * a browser the suite fails here, saying how to get one (`npm test` installs Debian's chromium when
 * it runs as root, through scripts/ensure-chromium.sh).
 */
export function chromiumPath(): string {
  const found = [process.env.CHROMIUM_PATH, '/usr/bin/chromium'].find((candidate): candidate is string => Boolean(candidate) && existsSync(candidate!));
  if (!found) throw new Error('No Chromium for the browser tests: run scripts/ensure-chromium.sh as root (npm test does), or set CHROMIUM_PATH.');
  return found;
}
