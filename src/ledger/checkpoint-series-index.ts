import type { KeyObject } from 'node:crypto';
import type { JetStreamManager } from 'nats';
import { checkpointStreamBounds, readAllCheckpointTexts, readCheckpointMessage } from './checkpoint-stream';
import { keyIdOf, type StoredCheckpointV2 } from './checkpoint';
import { verifyCheckpointChain } from './checkpoint-chain';
import { parseLinkMessage, type Link } from './checkpoint-link';
import { tenantLinkOf, type TenantLink } from './tenant-link';

export interface CheckpointSeriesIndexOptions {
  jsm: () => Promise<JetStreamManager>;
  stream: string;
  /** The key the API trusts (the worker's public key file); null while there is none. */
  key: () => Promise<KeyObject | null>;
}

interface IndexedLink {
  hash: string;
  streamSeq: number;
  kind: Link['kind'];
}

/**
 * The checkpoint series as the API serves it to tenants: every link of the main chain (checkpoints
 * and key rotations, from the series' genesis), found by link hash. The first use reads the whole
 * stream and checks it as `service-fs verify` does (verifyCheckpointChain: the chain from genesis,
 * keys changed only by rotations, foreign messages and side branches left out); later uses read
 * only the messages added since and take each one that extends the chain's tip under its current
 * key. Only link hashes and stream positions are kept: a link is read again from the stream when
 * asked for.
 */
export class CheckpointSeriesIndex {
  private links: IndexedLink[] = [];
  private position = new Map<string, number>();
  private keys = new Map<string, KeyObject>();
  private currentKey: string | null = null;
  private read = 0;
  private builtFor: string | null = null;
  private refreshing: Promise<void> | null = null;

  constructor(private readonly options: CheckpointSeriesIndexOptions) {}

  /** The link with this hash and the links after it, at most `limit` (oldest first); null: not a link of the series. */
  async after(linkHash: string | null, limit: number): Promise<{ links: TenantLink[]; more: boolean } | null> {
    await this.refresh();
    const start = linkHash === null ? 0 : this.position.get(linkHash);
    if (start === undefined) return null;
    const from = linkHash === null ? 0 : start + 1;
    const slice = this.links.slice(from, from + limit);
    const jsm = await this.options.jsm();
    const links: TenantLink[] = [];
    for (const entry of slice) links.push(tenantLinkOf(await this.linkAt(jsm, entry)));
    return { links, more: from + limit < this.links.length };
  }

  /** The checkpoint of the series with this link hash (for the operator's copy: head and entry tree), or null. */
  async checkpoint(linkHash: string): Promise<StoredCheckpointV2 | null> {
    await this.refresh();
    const index = this.position.get(linkHash);
    if (index === undefined || this.links[index]!.kind !== 'checkpoint') return null;
    const link = await this.linkAt(await this.options.jsm(), this.links[index]!);
    return link.kind === 'checkpoint' ? link.checkpoint : null;
  }

  private async linkAt(jsm: JetStreamManager, entry: IndexedLink): Promise<Link> {
    const text = await readCheckpointMessage(jsm, this.options.stream, entry.streamSeq);
    const parsed = text === null ? null : parseLinkMessage(text, this.keys);
    if (parsed === null || !('link' in parsed) || parsed.link.hash !== entry.hash)
      throw new Error(`checkpoint stream message ${entry.streamSeq} changed since it was read`);
    return parsed.link;
  }

  /** One refresh at a time; callers in between share it. */
  private refresh(): Promise<void> {
    this.refreshing ??= this.readNew().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async readNew(): Promise<void> {
    const key = await this.options.key();
    if (key === null) return;
    const jsm = await this.options.jsm();
    const bounds = await checkpointStreamBounds(jsm, this.options.stream);
    if (bounds === null || this.builtFor !== keyIdOf(key) || bounds.lastSeq < this.read) {
      this.reset();
      if (bounds !== null) await this.build(jsm, key);
      return;
    }
    for (let seq = this.read + 1; seq <= bounds.lastSeq; seq += 1) {
      const text = await readCheckpointMessage(jsm, this.options.stream, seq);
      if (text !== null) this.take(seq, text);
      this.read = seq;
    }
  }

  private reset(): void {
    this.links = [];
    this.position = new Map();
    this.keys = new Map();
    this.currentKey = null;
    this.read = 0;
    this.builtFor = null;
  }

  private async build(jsm: JetStreamManager, key: KeyObject): Promise<void> {
    const { messages, missingBefore } = await readAllCheckpointTexts(jsm, this.options.stream);
    const report = verifyCheckpointChain(messages, missingBefore, key);
    for (const { streamSeq, link } of report.series.links) this.append(streamSeq, link);
    this.keys = new Map([[keyIdOf(key), key]]);
    for (const { link } of report.series.links) {
      if (link.kind === 'rotation') {
        this.keys.set(link.rotation.key_id, link.oldKey);
        this.keys.set(link.rotation.new_key_id, link.newKey);
      }
    }
    const tip = report.series.links.at(-1)?.link;
    this.currentKey = tip === undefined ? keyIdOf(key) : tip.kind === 'rotation' ? tip.rotation.new_key_id : tip.checkpoint.key_id;
    this.read = messages.at(-1)?.streamSeq ?? missingBefore;
    this.builtFor = keyIdOf(key);
  }

  /** A new message: kept when it extends the tip under the series' current key (a rotation hands the key over). */
  private take(streamSeq: number, text: string): void {
    const parsed = parseLinkMessage(text, this.keys);
    if (!('link' in parsed) || parsed.link.kind === 'legacy' || this.position.has(parsed.link.hash)) return;
    const { link } = parsed;
    const previous = link.kind === 'rotation' ? link.rotation.previous : link.checkpoint.previous;
    const tip = this.links.at(-1);
    const signer = link.kind === 'rotation' ? link.rotation.key_id : link.checkpoint.key_id;
    if (signer !== this.currentKey || (tip !== undefined && previous !== tip.hash)) return;
    if (link.kind === 'rotation') {
      this.keys.set(link.rotation.new_key_id, link.newKey);
      this.currentKey = link.rotation.new_key_id;
    }
    this.append(streamSeq, link);
  }

  private append(streamSeq: number, link: Link): void {
    this.position.set(link.hash, this.links.length);
    this.links.push({ hash: link.hash, streamSeq, kind: link.kind });
  }
}
