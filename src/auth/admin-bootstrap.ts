import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { upsertBootstrapAdminToken } from './token.repository';
import { generateToken, hashToken } from './token-format';

export const BOOTSTRAP_ADMIN_TOKEN_ID = 'tok_bootstrap_admin';

export interface AdminBootstrapResult {
  source: 'env' | 'file-existing' | 'file-generated';
  tokenFile: string | null;
}

/**
 * Makes sure a platform administrator token exists: ADMIN_TOKEN when set, otherwise the token in
 * `<dataDir>/admin-token`, generated (mode 0600) on first start. The token itself is never logged.
 */
export async function ensureAdminToken(db: Kysely<Database>, options: { adminToken: string | undefined; dataDir: string; now: Date }): Promise<AdminBootstrapResult> {
  if (options.adminToken !== undefined) {
    await upsertBootstrapAdminToken(db, BOOTSTRAP_ADMIN_TOKEN_ID, hashToken(options.adminToken), options.now);
    return { source: 'env', tokenFile: null };
  }
  const tokenFile = path.join(options.dataDir, 'admin-token');
  let token = await readFile(tokenFile, 'utf8').then((text) => text.trim()).catch(() => '');
  const source = token ? 'file-existing' : 'file-generated';
  if (!token) {
    await mkdir(options.dataDir, { recursive: true });
    token = generateToken();
    // 'wx' so two API processes starting together cannot overwrite each other's token.
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600, flag: 'wx' }).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
      token = (await readFile(tokenFile, 'utf8')).trim();
    });
  }
  await upsertBootstrapAdminToken(db, BOOTSTRAP_ADMIN_TOKEN_ID, hashToken(token), options.now);
  return { source, tokenFile };
}
