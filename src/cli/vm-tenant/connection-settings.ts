import { lstat, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readSigningKey, SigningKeyError } from '../../client/signing-key-file';
import type { RequestSigningKey } from '../../client/request-signing';
import { CliError } from './cli-errors';

export interface ConnectionSettings {
  url: string;
  token: string;
  /** Signs every request (RFC 9421): needed by key-bound tokens, harmless to others. */
  signingKey?: RequestSigningKey;
}

export interface ConnectionFlags {
  url?: string;
  token?: string;
  profile?: string;
  key?: string;
}

/** `$XDG_CONFIG_HOME/vm-tenant/profile.json`, or `~/.config/vm-tenant/profile.json`. */
export function defaultProfilePath(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'vm-tenant', 'profile.json');
}

/**
 * The profile holds a bearer token, so it is read only when it is a regular file owned by this user
 * that no one else can read or write (mode 0600 or stricter), like ssh does with private keys.
 */
async function readProfile(file: string, required: boolean): Promise<{ url?: string; token?: string; key?: string }> {
  let stat;
  try {
    stat = await lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !required) return {};
    throw new CliError(`cannot read the profile ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'profile_unreadable');
  }
  if (!stat.isFile()) throw new CliError(`the profile ${file} is not a regular file`, 'profile_insecure');
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid())
    throw new CliError(`the profile ${file} is not owned by the current user`, 'profile_insecure');
  if ((stat.mode & 0o077) !== 0) {
    throw new CliError(
      `the profile ${file} is readable or writable by others (mode ${(stat.mode & 0o777).toString(8)}); run chmod 600 ${file}`,
      'profile_insecure',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    throw new CliError(`the profile ${file} is not JSON`, 'profile_invalid');
  }
  const { url, token, key } = (parsed ?? {}) as { url?: unknown; token?: unknown; key?: unknown };
  if ([url, token, key].some((value) => value !== undefined && typeof value !== 'string')) {
    throw new CliError(`the profile ${file} must be {"url": "...", "token": "...", "key": "<private key file, optional>"}`, 'profile_invalid');
  }
  return { url: url as string | undefined, token: token as string | undefined, key: key as string | undefined };
}

async function signingKeyAt(file: string, env: NodeJS.ProcessEnv): Promise<RequestSigningKey> {
  const expanded = file.startsWith('~/') ? path.join(env.HOME || os.homedir(), file.slice(2)) : file;
  try {
    return await readSigningKey(expanded);
  } catch (error) {
    if (error instanceof SigningKeyError) throw new CliError(`${error.message} (${expanded})`, error.code);
    throw error;
  }
}

/** Flags first, then VM_TENANT_URL / VM_TENANT_TOKEN / VM_TENANT_KEY, then the profile file. */
export async function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv): Promise<ConnectionSettings> {
  const profilePath = flags.profile ?? env.VM_TENANT_PROFILE ?? defaultProfilePath(env);
  const profile = await readProfile(profilePath, flags.profile !== undefined || env.VM_TENANT_PROFILE !== undefined);
  const url = flags.url ?? env.VM_TENANT_URL ?? profile.url;
  const token = flags.token ?? env.VM_TENANT_TOKEN ?? profile.token;
  if (!url) throw new CliError(`no API URL: pass --url, set VM_TENANT_URL, or put "url" in ${profilePath}`, 'no_url');
  if (!token) throw new CliError(`no token: pass --token, set VM_TENANT_TOKEN, or put "token" in ${profilePath}`, 'no_token');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`the API URL is not a URL`, 'bad_url');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError('the API URL must be http or https', 'bad_url');
  const keyFile = flags.key ?? env.VM_TENANT_KEY ?? profile.key;
  return { url: url.replace(/\/+$/, ''), token, ...(keyFile ? { signingKey: await signingKeyAt(keyFile, env) } : {}) };
}
