import { appendFile, readFile } from 'node:fs/promises';
import { readPublicKeyFile } from './checkpoint-key-file';
import { UsageError } from './usage-error';
import { extendWitnessLog, openWitnessLog, type WitnessLog } from '../ledger/witness-log';

export interface WitnessOptions {
  apiUrl: string;
  tokenFile: string;
  keyFile: string;
  logFile: string;
  /** Per request to the API. */
  timeoutMs?: number;
}

export interface WitnessVerdict {
  ok: boolean;
  lines: string[];
}

export class WitnessFetchError extends Error {
  override readonly name = 'WitnessFetchError';
}

const PAGE = 1000;

/**
 * `service-fs witness`: run by someone the operator does not control (a tenant, an auditor), on a
 * schedule. Fetches the links of the checkpoint series that follow the last one in its log, checks
 * that they extend it under the series' key, and appends them; refuses (exit 1, nothing appended)
 * when the service shows a history that does not extend what it showed before. The log is the
 * file tenants fetch and give to `service-fs verify-tenant --witness`.
 */
export async function runWitness(options: WitnessOptions): Promise<WitnessVerdict> {
  const pinned = await readPublicKeyFile(options.keyFile);
  const token = (
    await readFile(options.tokenFile, 'utf8').catch(() => {
      throw new UsageError(`cannot read ${options.tokenFile}`);
    })
  ).trim();
  const existing = await readFile(options.logFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw new UsageError(`cannot read ${options.logFile}: ${error.code ?? String(error)}`);
  });
  let values: unknown[];
  try {
    values = existing
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as unknown);
  } catch {
    throw new UsageError(`${options.logFile} is not JSON Lines`);
  }
  const opened = openWitnessLog(values, pinned);
  if ('fork' in opened) return { ok: false, lines: [`bad: fork: the witness's own log does not hold together: ${opened.fork}`] };
  let log: WitnessLog = opened.log;
  let added = 0;
  for (;;) {
    const url = new URL('/v1/audit/checkpoints', options.apiUrl);
    url.searchParams.set('limit', String(PAGE));
    if (log.tip !== null) url.searchParams.set('cursor', log.tip.hash);
    const page = await fetchPage(url, token, options.timeoutMs ?? 10_000);
    if (page === 'tip_unknown') {
      return {
        ok: false,
        lines: [`bad: fork: the service no longer has the witnessed link ${log.tip!.hash} (signed at ${log.tip!.signed_at}): its series was reset or replaced`],
      };
    }
    const extended = extendWitnessLog(log, page.items);
    if ('fork' in extended) return { ok: false, lines: [`bad: fork: ${extended.fork}`] };
    if (extended.added.length > 0) await appendFile(options.logFile, extended.added.map((link) => `${JSON.stringify(link)}\n`).join(''));
    added += extended.added.length;
    log = extended.log;
    if (page.next_cursor === null || extended.added.length === 0) break;
  }
  const tip = log.tip === null ? 'no link yet' : `the tip is ${log.tip.hash} (signed at ${log.tip.signed_at})`;
  return { ok: true, lines: [`ok: witnessed ${added} new link${added === 1 ? '' : 's'} (${log.links.length} in the log); ${tip}`] };
}

async function fetchPage(url: URL, token: string, timeoutMs: number): Promise<{ items: unknown[]; next_cursor: string | null } | 'tip_unknown'> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new WitnessFetchError(`cannot reach ${url.origin}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const body = (await response.json().catch(() => null)) as { items?: unknown; next_cursor?: unknown; code?: unknown } | null;
  if (response.status === 404 && body?.code === 'checkpoint_not_found') return 'tip_unknown';
  if (response.status !== 200 || !Array.isArray(body?.items))
    throw new WitnessFetchError(`GET ${url.pathname} answered ${response.status}${typeof body?.code === 'string' ? ` ${body.code}` : ''}`);
  return { items: body.items, next_cursor: typeof body.next_cursor === 'string' ? body.next_cursor : null };
}
