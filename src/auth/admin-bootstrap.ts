import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { readAdminTokenFile } from './admin-token-file';
import { upsertBootstrapAdminToken } from './token.repository';
import { generateToken, hashToken } from './token-format';

export const BOOTSTRAP_ADMIN_TOKEN_ID = 'tok_bootstrap_admin';

export interface AdminBootstrapResult {
  source: 'env' | 'file-existing' | 'file-generated';
  tokenFile: string | null;
}

/**
 * Makes sure a platform administrator token exists: ADMIN_TOKEN when set, otherwise the token in
 * `<dataDir>/admin-token`, generated (mode 0600) on first start. An existing file is checked
 * (readAdminTokenFile) and a bad one stops the start with AdminTokenFileError. The token itself is
 * never logged.
 */
export async function ensureAdminToken(
  db: Kysely<Database>,
  options: { adminToken: string | undefined; dataDir: string; now: Date },
): Promise<AdminBootstrapResult> {
  if (options.adminToken !== undefined) {
    await upsertBootstrapAdminToken(db, BOOTSTRAP_ADMIN_TOKEN_ID, hashToken(options.adminToken), options.now);
    return { source: 'env', tokenFile: null };
  }
  const tokenFile = path.join(options.dataDir, 'admin-token');
  let token = await readAdminTokenFile(tokenFile);
  const source = token ? 'file-existing' : 'file-generated';
  if (!token) {
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    const generated = generateToken();
    // 'wx' so two API processes starting together cannot overwrite each other's token.
    const written = await writeFile(tokenFile, `${generated}\n`, { mode: 0o600, flag: 'wx' }).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
        return false;
      },
    );
    // The other process's file goes through the same checks as any existing one.
    token = written ? generated : await readAdminTokenFile(tokenFile);
    if (!token) throw new Error(`admin token file ${tokenFile} vanished while it was being created`);
  }
  await upsertBootstrapAdminToken(db, BOOTSTRAP_ADMIN_TOKEN_ID, hashToken(token), options.now);
  return { source, tokenFile };
}
