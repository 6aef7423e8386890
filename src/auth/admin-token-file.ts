import { lstat, readFile } from 'node:fs/promises';
import { isWellFormedToken } from './token-format';

/** The admin token file cannot be trusted; the message names the file and what is wrong with it. */
export class AdminTokenFileError extends Error {
  override readonly name = 'AdminTokenFileError';
}

/**
 * Reads the platform admin token from its file after checking that only this process's user can
 * have written or read it: a regular file (not a symlink someone could point elsewhere), owned by
 * the process user, with no permission for group or others (0600 or stricter), holding one token
 * in the token format. Returns undefined when the file does not exist.
 */
export async function readAdminTokenFile(file: string, processUid: number | undefined = process.getuid?.()): Promise<string | undefined> {
  const stats = await lstat(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new AdminTokenFileError(`admin token file ${file} cannot be read: ${error.code ?? error.message}`);
  });
  if (!stats) return undefined;
  const fix = `fix it, or delete it to have a new token generated`;
  if (!stats.isFile()) throw new AdminTokenFileError(`admin token file ${file} is not a regular file (a symlink or directory is refused); ${fix}`);
  if (processUid !== undefined && stats.uid !== processUid) {
    throw new AdminTokenFileError(`admin token file ${file} is owned by uid ${stats.uid}, not by this process's user (uid ${processUid}); ${fix}`);
  }
  const mode = stats.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new AdminTokenFileError(`admin token file ${file} has mode 0${mode.toString(8)}; it must be 0600 (readable by its owner only): chmod 600 ${file}`);
  }
  const token = (await readFile(file, 'utf8')).trim();
  if (!isWellFormedToken(token)) {
    throw new AdminTokenFileError(`admin token file ${file} does not hold a token in the vmt_ format (vmt_ + 30 base62 + 6-character CRC32); ${fix}`);
  }
  return token;
}
