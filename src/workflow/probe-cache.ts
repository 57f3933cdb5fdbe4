/**
 * ffprobe's verdicts kept on disk between runs, by content: `<dir>/<sha256>.json` holds what
 * one ffprobe binary said about those bytes. Preflight reads it before probing, so validating
 * or running the same inputs again (an edit-and-validate loop, a resumed batch) starts no
 * ffprobe at all: two probes were most of `talk validate`'s time above bare node
 * (bench/notes/validate.md).
 *
 * The same bytes and the same ffprobe give the same answer, so a hit is as good as a probe.
 * "The same ffprobe" is its resolved path, size, modification time and inode: a replaced or
 * upgraded binary misses, and its first probe overwrites the entry. Only successful probes are
 * kept (a failure is probed again and reported with ffprobe's own words).
 *
 * Beside the verdicts, `<dir>/files/<device>-<inode>.json` remembers the content hash of a file
 * for as long as stat says the same of it (size, modification and change times; a write in
 * place changes the change time, which no tool can set back), so the same inputs validated
 * again are not read, nor node:crypto loaded, to find their verdicts. A file changed in the
 * last few seconds is not remembered: file times tick coarsely (a few ms), so a second write
 * within one tick of the hash could leave stat saying the same of other bytes.
 *
 * The cache is a convenience: a missing, unreadable or damaged entry is a miss, and a write
 * that fails is ignored.
 */
import type { Stats } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.js';
import { systemClock, type Clock } from '../core/clock.js';
import { isRecord } from '../core/guards.js';
import type { MediaInfo } from '../core/media-tools.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Format of an entry; a different one is a miss. */
const VERSION = 1;

/** What one cache file holds. */
interface ProbeEntry {
  version: typeof VERSION;
  /** The ffprobe that answered (see `toolIdentity`). */
  tool: string;
  info: MediaInfo;
}

/** Looks verdicts up and stores them, for one ffprobe. */
export interface ProbeCache {
  /** The verdict stored for this content, or undefined. */
  get(sha256: string): Promise<MediaInfo | undefined>;
  /** Store a successful probe; never throws. */
  set(sha256: string, info: MediaInfo): Promise<void>;
  /** The content hash remembered for the file `stats` describe, or undefined. */
  contentOf(stats: Stats): Promise<string | undefined>;
  /** Remember `sha256` as the content of the file `stats` describe, once it has settled; never throws. */
  rememberContent(stats: Stats, sha256: string): Promise<void>;
}

/** How long ago a file must have last changed for its content hash to be remembered. */
export const SETTLED_MS = 2000;

/** What a file's content memo holds: the stat facts it was hashed under, and the hash. */
interface ContentEntry {
  version: typeof VERSION;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  sha256: string;
}

/**
 * The default folder: `$XDG_CACHE_HOME/talk/probes`, else `$HOME/.cache/talk/probes`; undefined
 * when the environment names neither (no cache then).
 */
export function defaultProbeCacheDir(env: Env): string | undefined {
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'talk', 'probes');
  const home = env['HOME'];
  return home && path.isAbsolute(home) ? path.join(home, '.cache', 'talk', 'probes') : undefined;
}

/** Which binary `ffprobe` is: its real path and what stat says of it; undefined when it is not a file. */
async function toolIdentity(ffprobe: string): Promise<string | undefined> {
  try {
    const real = await realpath(ffprobe);
    const info = await stat(real);
    return info.isFile() ? `${real}:${info.size}:${info.mtimeMs}:${info.ino}` : undefined;
  } catch {
    return undefined;
  }
}

function isMediaInfo(value: unknown): value is MediaInfo {
  return isRecord(value) && typeof value['hasVideo'] === 'boolean' && typeof value['hasAudio'] === 'boolean';
}

/**
 * The cache in `dir` for the ffprobe at `ffprobe`; undefined when that binary cannot be named
 * (a bare command or a missing file: probing reports it, the cache stays out of the way).
 */
export async function openProbeCache(dir: string, ffprobe: string, clock: Clock = systemClock): Promise<ProbeCache | undefined> {
  if (!path.isAbsolute(ffprobe)) return undefined;
  const tool = await toolIdentity(ffprobe);
  if (tool === undefined) return undefined;
  const fileOf = (sha256: string): string => path.join(dir, `${sha256}.json`);
  const memoOf = (stats: Stats): string => path.join(dir, 'files', `${stats.dev}-${stats.ino}.json`);
  return {
    async get(sha256) {
      try {
        const entry = JSON.parse(await readFile(fileOf(sha256), 'utf8')) as unknown;
        if (isRecord(entry) && entry['version'] === VERSION && entry['tool'] === tool && isMediaInfo(entry['info'])) return entry['info'];
      } catch {
        // absent or damaged: a miss
      }
      return undefined;
    },
    async set(sha256, info) {
      const entry: ProbeEntry = { version: VERSION, tool, info };
      // Not durable: a verdict lost to a power cut is probed again.
      await writeFileAtomic(fileOf(sha256), `${JSON.stringify(entry)}\n`, { durable: false }).catch(() => undefined);
    },
    async contentOf(stats) {
      try {
        const entry = JSON.parse(await readFile(memoOf(stats), 'utf8')) as unknown;
        if (
          isRecord(entry) &&
          entry['version'] === VERSION &&
          entry['size'] === stats.size &&
          entry['mtimeMs'] === stats.mtimeMs &&
          entry['ctimeMs'] === stats.ctimeMs &&
          typeof entry['sha256'] === 'string' &&
          /^[0-9a-f]{64}$/.test(entry['sha256'])
        ) {
          return entry['sha256'];
        }
      } catch {
        // absent or damaged: a miss
      }
      return undefined;
    },
    async rememberContent(stats, sha256) {
      if (clock.now() - Math.max(stats.mtimeMs, stats.ctimeMs) < SETTLED_MS) return;
      const entry: ContentEntry = { version: VERSION, size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, sha256 };
      await writeFileAtomic(memoOf(stats), `${JSON.stringify(entry)}\n`, { durable: false }).catch(() => undefined);
    },
  };
}
