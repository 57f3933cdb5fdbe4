/**
 * One upload per file per account (issue "never pay for nothing", SPEC §4): a content-addressed
 * cache of what the backend answered for bytes it received — SHA-256 → its file object with the
 * `cdn_url` — kept per backend identity and account, with an expiry. A later session that needs
 * the same bytes is given that URL in the contract's URL form of upload (CONTRACT §2.5) instead
 * of the bytes; a URL the backend refuses falls back to sending the bytes once, and the stale
 * entry is replaced.
 *
 * Within one process, the first upload of some content is the only one that sends it: other
 * uploads of the same content wait for it and then go by URL (a batch of 200 items sharing a
 * portrait starts at concurrency 20 and still sends the portrait once).
 *
 * `withUploadCache` wraps a `BackendClient`, so the runner does not know the cache exists; its
 * `UploadResult` is the same either way (`bytes` is the file's size, `sha256` its content).
 *
 * The cache file is JSON beside the client id (never a token in it: a user-supplied token's
 * account is named by a one-way fingerprint). Entries are merged into what is on disk when one
 * is added, and written atomically (temp file, rename), so runs sharing the file lose nothing
 * but, at worst, a chance to skip an upload.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { sharedFileHasher, type FileHasher } from '../core/hash-file.js';
import type { SessionId } from '../core/ids.js';
import type { UploadedFile } from '../contract/bodies.js';
import type { TokenProvider } from './auth.js';
import type { BackendClient, CallOptions, TransferProgress, UploadResult } from './types.js';
import { writeFileAtomic } from '../core/atomic-write.js';

/** How long a cached `cdn_url` is offered to the backend (a refused one costs one request). */
export const UPLOAD_CACHE_TTL_MS = 24 * 3600 * 1000;

/** One remembered upload. */
interface CacheEntry {
  size: number;
  file: UploadedFile;
  savedAt: number;
  expiresAt: number;
}

/** One change to the cache: account, content, and its new entry (none: removed). */
type Change = [account: string, sha256: string, entry: CacheEntry | undefined];

/** The file on disk: backend identity → account → SHA-256 → entry. */
interface CacheFile {
  version: 1;
  backends: Record<string, Record<string, Record<string, CacheEntry>>>;
}

/** Options of `withUploadCache`. */
export interface UploadCacheOptions {
  /** The JSON file (created on first use). */
  file: string;
  /** Which backend (`local`, or its URL): a `cdn_url` is only offered where it came from. */
  backendId: string;
  /** The account uploads belong to, known once a token is; undefined = no cross-session reuse. */
  account: () => string | undefined;
  /** Default `UPLOAD_CACHE_TTL_MS`. */
  ttlMs?: number;
  now?: () => number;
  /** Hashes the files to look them up; a command shares one with its run (default: one of its own). */
  hasher?: FileHasher | undefined;
}

/** What `withUploadCache` counted, for tests and benchmarks. */
export interface UploadCacheCounters {
  /** Uploads that sent the bytes. */
  sent: number;
  /** Uploads given as a cached URL and accepted. */
  byUrl: number;
  /** Cached URLs the backend refused (each followed by sending the bytes). */
  refused: number;
}

/**
 * The account a token provider's uploads belong to: the anonymous user id, or for a user's own
 * token (`NEMO_TOKEN`) a one-way fingerprint of it, which names the account in the cache file
 * without being usable as a credential. Undefined until a token is known.
 */
export function uploadAccount(auth: Pick<TokenProvider, 'userSupplied' | 'anonymousUserId' | 'secrets'>): string | undefined {
  const anonymous = auth.anonymousUserId();
  if (anonymous !== undefined) return anonymous;
  const token = auth.userSupplied ? auth.secrets()[0] : undefined;
  return token === undefined ? undefined : `token-${createHash('sha256').update(`talk upload cache\n${token}`).digest('hex').slice(0, 16)}`;
}

const isSha256 = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f]{64}$/i.test(value);

function emptyCache(): CacheFile {
  return { version: 1, backends: {} };
}

async function readCache(file: string): Promise<CacheFile> {
  try {
    const data = JSON.parse(await readFile(file, 'utf8')) as Partial<CacheFile>;
    if (data.version === 1 && typeof data.backends === 'object' && data.backends !== null) return data as CacheFile;
  } catch {
    // Missing, half-written by a crashed run, or from another version: start empty; the cache
    // only ever saves work, it is never needed for correctness.
  }
  return emptyCache();
}

/**
 * Wrap `client` so `uploadFile` sends each content once per account (see the module comment).
 * `counters` on the result says what happened.
 */
export function withUploadCache<T extends BackendClient>(client: T, options: UploadCacheOptions): T & { uploadCounters: UploadCacheCounters } {
  const ttlMs = options.ttlMs ?? UPLOAD_CACHE_TTL_MS;
  const now = options.now ?? Date.now;
  const counters: UploadCacheCounters = { sent: 0, byUrl: 0, refused: 0 };
  let loaded: Promise<CacheFile> | undefined;
  /** Bytes being sent now, per account and content: later uploads of it wait, then go by URL. */
  const sending = new Map<string, Promise<unknown>>();

  const cache = (): Promise<CacheFile> => (loaded ??= readCache(options.file));

  const lookup = async (account: string, sha256: string, size: number): Promise<CacheEntry | undefined> => {
    const entry = (await cache()).backends[options.backendId]?.[account]?.[sha256];
    if (!entry || entry.expiresAt <= now() || entry.size !== size || typeof entry.file?.cdn_url !== 'string') return undefined;
    return entry;
  };

  /** Set (or, with no entry, remove) one content's entry in `data`. */
  const apply = (data: CacheFile, [account, sha256, entry]: Change): void => {
    const entries = ((data.backends[options.backendId] ??= {})[account] ??= {});
    if (entry) entries[sha256] = entry;
    else delete entries[sha256];
  };
  /** Changes not yet on disk, and who waits for them. */
  let queued: Change[] = [];
  let waiting: (() => void)[] = [];
  let writer: Promise<void> | undefined;
  /** What this process last wrote, and the file's size and time right after: unchanged since, it need not be read back. */
  let written: { data: CacheFile; size: number; mtimeMs: number } | undefined;

  /**
   * Write every queued change in one go, merged into what is on disk (other runs share the
   * file), until none are left. Group commit: a batch that uploads 20 files at once writes the
   * file once for all of them, not once each — the file holds every entry, so one write per
   * upload made a batch of distinct files write the square of its size.
   */
  const writeQueued = async (): Promise<void> => {
    while (queued.length > 0) {
      const changes = queued;
      const done = waiting;
      queued = [];
      waiting = [];
      try {
        const seen = await stat(options.file).catch(() => undefined);
        const onDisk = written && seen && seen.size === written.size && seen.mtimeMs === written.mtimeMs ? written.data : await readCache(options.file);
        for (const change of changes) apply(onDisk, change);
        const t = now();
        for (const accounts of Object.values(onDisk.backends)) {
          for (const entries of Object.values(accounts)) for (const [key, e] of Object.entries(entries)) if (e.expiresAt <= t) delete entries[key];
        }
        await writeFileAtomic(options.file, `${JSON.stringify(onDisk)}\n`, { mode: 0o600, durable: false });
        const after = await stat(options.file);
        written = { data: onDisk, size: after.size, mtimeMs: after.mtimeMs };
      } catch {
        // A cache that cannot be written (read-only config, full disk) only means the next
        // session sends the bytes again; the upload itself succeeded.
        written = undefined;
      }
      for (const resolve of done) resolve();
    }
  };

  /** Apply a change to the in-memory cache now and to the file with the next write; resolves once it is written. */
  const persist = async (account: string, sha256: string, entry: CacheEntry | undefined): Promise<void> => {
    apply(await cache(), [account, sha256, entry]);
    queued.push([account, sha256, entry]);
    const done = new Promise<void>((resolve) => waiting.push(resolve));
    writer ??= writeQueued().finally(() => (writer = undefined));
    return done;
  };

  // The command's hasher when it shares one (preflight and fingerprints read the same inputs).
  const hashOf = options.hasher ?? sharedFileHasher();

  /** The cached file by URL, or undefined when the backend refused it (or answered other bytes). */
  const viaUrl = async (sessionId: SessionId, entry: CacheEntry, sha256: string, o: CallOptions & { onProgress?: TransferProgress }): Promise<UploadResult | undefined> => {
    try {
      const files = await client.uploadUrl(sessionId, entry.file.cdn_url, o);
      const file = files[0];
      // A backend that names the content tells whether it took the same bytes.
      if (!file || (isSha256(file.hash) && file.hash.toLowerCase() !== sha256) || (typeof file.size === 'number' && file.size !== entry.size)) return undefined;
      o.onProgress?.(entry.size, entry.size);
      counters.byUrl += 1;
      return { file, bytes: entry.size, sha256 };
    } catch (error) {
      if (o.signal?.aborted) throw error;
      return undefined;
    }
  };

  const uploadFile: BackendClient['uploadFile'] = async (sessionId, filePath, o = {}) => {
    const account = options.account();
    let info;
    try {
      info = await stat(filePath);
    } catch {
      info = undefined;
    }
    if (account === undefined || !info?.isFile()) {
      // No account to key on, or nothing to hash: the client's own checks and errors apply.
      counters.sent += 1;
      return client.uploadFile(sessionId, filePath, o);
    }
    const sha256 = await hashOf(filePath, { signal: o.signal, stats: info });
    const key = `${account}\0${sha256}`;
    const offered = new Set<string>();
    for (;;) {
      const entry = await lookup(account, sha256, info.size);
      if (entry && !offered.has(entry.file.cdn_url)) {
        offered.add(entry.file.cdn_url);
        const result = await viaUrl(sessionId, entry, sha256, o);
        if (result) return result;
        counters.refused += 1;
        await persist(account, sha256, undefined);
      }
      const inFlight = sending.get(key);
      if (inFlight === undefined) break;
      // Someone is sending these bytes now: wait, then take its URL (or send them if it failed).
      await inFlight.then(
        () => undefined,
        () => undefined,
      );
    }
    // Sending and remembering are one unit: whoever waited on it finds the entry when it ends.
    const work = (async (): Promise<UploadResult> => {
      const result = await client.uploadFile(sessionId, filePath, o);
      counters.sent += 1;
      if (/^https?:\/\//i.test(result.file.cdn_url ?? '')) {
        const t = now();
        await persist(account, result.sha256, { size: result.bytes, file: result.file, savedAt: t, expiresAt: t + ttlMs });
      }
      return result;
    })();
    sending.set(key, work);
    try {
      return await work;
    } finally {
      sending.delete(key);
    }
  };

  return Object.assign(Object.create(client) as T, client, { uploadFile, uploadCounters: counters });
}
