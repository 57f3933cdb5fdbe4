/**
 * Stage 5 of loading, when asked (`talk validate`, and `talk run` before its first request):
 * preflight, the checks that need the machine rather than the file, so that nothing is paid for
 * a run that cannot succeed (SPEC §1 money rules).
 *
 * - Every output's folder can be created and written: it is created, and a temp file is
 *   written in it and removed (once per distinct folder).
 * - Every local input decodes with ffprobe as its role needs (see `roleOf`), probed once per
 *   distinct content: files are hashed once per path, probed once per SHA-256, so a batch of
 *   10,000 items that share a portrait probes it once.
 *
 * Everything else the rules already checked (missing files, types, 200 MB, outputs that escape
 * the folder or collide between jobs). Problems come back as located diagnostics, at the
 * input's or the output's place in the file.
 */
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { makeDiagnostic, type Diagnostic, type SourceSpan } from '../core/diagnostics.js';
import { sharedFileHasher, type FileHasher } from '../core/hash-file.js';
import { findMediaTool, probeMedia, type MediaInfo } from '../core/media-tools.js';
import { TalkError } from '../core/errors.js';
import { mediaKindOf } from '../contract/media.js';
import { openProbeCache } from './probe-cache.js';
import { unreachable } from '../core/unreachable.js';
import { tempSuffix } from '../core/temp-name.js';
import type { Clock } from '../core/clock.js';

type Located = SourceSpan & { sourceLine?: string };

/**
 * What an input must be, from its name first and its extension otherwise:
 * - `portrait` (an input named `portrait`): a picture — an image or a video — with a size.
 * - `voice` (an input named `voice`): an audio stream with a duration above 0 (a video with a
 *   sound track is a voice too).
 * - `picture` (any other image or video file): decodes with a picture size.
 * - `sound` (any other audio file, e.g. background music): an audio stream with a duration above 0.
 * These are the names the short form, `talk init` and watch roles use; a workflow that names its
 * inputs otherwise is checked by what its files claim to be.
 */
export type MediaRole = 'portrait' | 'voice' | 'picture' | 'sound';

/** The role of input `name` whose file has extension `ext`. */
export function roleOf(name: string, ext: string): MediaRole {
  if (name === 'portrait') return 'portrait';
  if (name === 'voice') return 'voice';
  return mediaKindOf(ext) === 'audio' ? 'sound' : 'picture';
}

/** One local input of one job, as the rules resolved it. */
export interface MediaTarget {
  /** The input's name in `inputs:` (or the `foreach` key). */
  input: string;
  absolute: string;
  /** As shown in messages (relative to the workflow's folder). */
  shown: string;
  at: Located;
}

/** One export's output of one job. */
export interface OutputTarget {
  absolute: string;
  shown: string;
  at: Located;
}

/** What preflight checks, collected by the rules for every job. */
export interface PreflightTargets {
  media: MediaTarget[];
  outputs: OutputTarget[];
}

/** Options of `preflightWorkflow`. */
export interface PreflightOptions {
  /** For FFPROBE_PATH and PATH. */
  env: Readonly<Record<string, string | undefined>>;
  signal?: AbortSignal | undefined;
  /** ffprobe to use; found like the local backend finds it when absent. */
  ffprobe?: string | undefined;
  /** Files hashed or probed at once (default 4: the machine may have 2 cores). */
  concurrency?: number;
  /** Probe results by SHA-256, shared between calls (e.g. several workflows of one command). */
  probes?: Map<string, Promise<MediaInfo>>;
  /**
   * A folder of ffprobe verdicts kept between runs (probe-cache.ts; commands pass
   * `defaultProbeCacheDir(env)`): content probed before by the same ffprobe is not probed again.
   */
  probeCacheDir?: string | undefined;
  /** Hashes the inputs; a command shares one with its run, so each file is read once (default: one of its own). */
  hasher?: FileHasher | undefined;
  /**
   * Look each input's content hash up in the probe cache by what stat says of it, and remember
   * it there, so the next preflight of the same files reads none of them (`talk validate`). A
   * run leaves it off: it hashes every input for its fingerprints anyway, and the memo would
   * only add a read and a write per file (≈ 0.2 ms each, measured on 5,000 files).
   */
  rememberHashes?: boolean | undefined;
  /** Told what the preflight did, when it is done (benchmarks, `--verbose`). */
  onStats?: (stats: PreflightStats) => void;
  /** For the probe cache's "changed lately" test (default: the system's). */
  clock?: Clock | undefined;
}

/** Figures of a preflight, for benchmarks and `--verbose`. */
export interface PreflightStats {
  /** Distinct output folders checked. */
  folders: number;
  /** Distinct input paths. */
  files: number;
  /** ffprobe runs (distinct contents not probed before). */
  probes: number;
  /** Distinct contents whose verdict came from the probe cache instead. */
  cachedProbes: number;
  /** Wall time of the preflight. */
  ms: number;
}

function describeErrno(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e.code ?? (error instanceof Error ? error.message : String(error));
}

/** The nearest existing ancestor of `dir` that is not a folder (what blocks mkdir), if any. */
async function blockingFile(dir: string): Promise<string | undefined> {
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      return (await stat(at)).isDirectory() ? undefined : at;
    } catch {
      // not there yet: look further up
    }
    if (path.dirname(at) === at) return undefined;
  }
}

/** Create `dir` and prove it writable with a temp file; a sentence of what is wrong, or undefined. */
async function checkFolder(dir: string, shownDir: string, baseDir: string): Promise<{ message: string; hint: string } | undefined> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    const blocker = await blockingFile(dir);
    if (blocker !== undefined) {
      const shownBlocker = path.relative(baseDir, blocker) || path.basename(blocker);
      return { message: `the output folder ${shownDir} cannot be created: ${shownBlocker} is a file`, hint: `move or rename ${shownBlocker}, or write the output somewhere else` };
    }
    return { message: `the output folder ${shownDir} cannot be created (${describeErrno(error)})`, hint: 'check the folder\'s permissions, or write the output somewhere else' };
  }
  const probe = path.join(dir, `.talk-preflight-${tempSuffix()}.tmp`);
  try {
    await writeFile(probe, 'talk preflight\n', { flag: 'wx' });
  } catch (error) {
    return { message: `the output folder ${shownDir} is not writable (${describeErrno(error)})`, hint: 'check the folder\'s permissions and free space, or write the output somewhere else' };
  } finally {
    await rm(probe, { force: true }).catch(() => undefined);
  }
  return undefined;
}

/** What `info` lacks for `role`, in words; undefined when it is fit. */
function unfitFor(role: MediaRole, info: MediaInfo, ext: string): string | undefined {
  switch (role) {
    case 'portrait':
    case 'picture':
      if (!info.hasVideo) return info.hasAudio ? 'is audio only; it needs to be an image or a video' : 'holds no picture';
      if (!info.width || !info.height) return 'holds no picture with a size (it does not decode as an image)';
      return undefined;
    case 'voice':
    case 'sound':
      if (!info.hasAudio) return mediaKindOf(ext) === 'image' ? 'is a picture, with no sound' : info.hasVideo ? 'has no sound track' : 'holds no audio';
      if (info.duration === undefined || !(info.duration > 0)) return 'holds audio with no length (duration 0)';
      return undefined;
    default:
      return unreachable(role, 'role');
  }
}

function roleWords(role: MediaRole): string {
  return role === 'portrait' || role === 'picture' ? 'an image or a video' : 'audio';
}

/** The last line of ffprobe's complaint, for a message, naming the file as the user wrote it. */
function probeReason(error: unknown, absolute: string): string {
  const text = error instanceof Error ? error.message : String(error);
  const tail = (text.split(' | ').pop() ?? text).replace(/^.*exited with \d+: /, '');
  return tail.split(`${absolute}: `).join('').split(absolute).join(path.basename(absolute)).trim().slice(0, 160) || 'unreadable';
}

/**
 * Check outputs and inputs; returns located diagnostics (errors) and figures. Throws only on an
 * abort, or an `environment` TalkError when media need probing and no ffprobe is found.
 */
export async function preflightWorkflow(targets: PreflightTargets, baseDir: string, options: PreflightOptions): Promise<{ diagnostics: Diagnostic[]; stats: PreflightStats }> {
  const { signal } = options;
  // Milliseconds are enough here, and `performance` would load perf_hooks at every validate.
  const started = Date.now();
  const limit = pLimit(Math.max(1, options.concurrency ?? 4));
  const diagnostics: Diagnostic[] = [];
  const seen = new Set<string>();
  const add = (at: Located, message: string, hint: string): void => {
    const key = `${at.file}:${at.line}:${at.col}:${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    diagnostics.push(makeDiagnostic(at, 'error', message, hint));
  };

  // Outputs: one check per distinct folder, reported at every place that writes there.
  const folders = new Set(targets.outputs.map((output) => path.dirname(output.absolute)));
  await Promise.all(
    [...folders].map((dir) =>
      limit(async () => {
        signal?.throwIfAborted();
        const shownDir = path.relative(baseDir, dir) || '.';
        const problem = await checkFolder(dir, shownDir, baseDir);
        if (problem) {
          for (const output of targets.outputs) if (path.dirname(output.absolute) === dir) add(output.at, `output ${output.shown}: ${problem.message}`, problem.hint);
        }
      }),
    ),
  );
  // An output that names an existing folder could never be written: one listing per folder
  // (not a stat per output: a 10,000-item batch writes 10,000 files into one folder).
  const foldersThere = new Map<string, Set<string>>();
  await Promise.all(
    [...folders].map((dir) =>
      limit(async () => {
        const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
        foldersThere.set(dir, new Set(entries.filter((e) => e.isDirectory()).map((e) => e.name)));
      }),
    ),
  );
  for (const output of targets.outputs) {
    if (foldersThere.get(path.dirname(output.absolute))?.has(path.basename(output.absolute))) {
      add(output.at, `output ${output.shown} is a folder, not a file`, 'name the video file, e.g. out/video.mp4');
    }
  }

  // Inputs: hash each distinct path once, probe each distinct content once.
  const byPath = new Map<string, MediaTarget[]>();
  for (const target of targets.media) {
    const list = byPath.get(target.absolute);
    if (list) list.push(target);
    else byPath.set(target.absolute, [target]);
  }
  const probes = options.probes ?? new Map<string, Promise<MediaInfo>>();
  let ffprobe = options.ffprobe;
  let probeCount = 0;
  let cachedCount = 0;
  if (byPath.size > 0 && ffprobe === undefined) ffprobe = findMediaTool('ffprobe', options.env, 'checking the workflow\'s media before a run');
  const tool = ffprobe ?? '';
  const cache = byPath.size > 0 && options.probeCacheDir !== undefined ? await openProbeCache(options.probeCacheDir, tool, options.clock) : undefined;
  const probeOnce = async (sha256: string, absolute: string): Promise<MediaInfo> => {
    const known = await cache?.get(sha256);
    if (known !== undefined) {
      cachedCount += 1;
      return known;
    }
    probeCount += 1;
    const info = await probeMedia(tool, absolute, signal);
    await cache?.set(sha256, info);
    return info;
  };
  // Paths to one file (hard links, the same file named twice) are read once: same inode, same
  // size and times, same bytes. A command passes the hasher its run uses too. With
  // `rememberHashes`, a file hashed by an earlier command under the same stat is not read again.
  const hasher = options.hasher ?? sharedFileHasher();
  const hashOnce = async (absolute: string): Promise<string> => {
    if (cache === undefined || options.rememberHashes !== true) return hasher(absolute, { signal });
    const stats = await stat(absolute);
    const known = await cache.contentOf(stats);
    if (known !== undefined) return known;
    const sha256 = await hasher(absolute, { signal, stats });
    await cache.rememberContent(stats, sha256);
    return sha256;
  };
  await Promise.all(
    [...byPath].map(([absolute, uses]) =>
      limit(async () => {
        signal?.throwIfAborted();
        let sha256: string;
        try {
          sha256 = await hashOnce(absolute);
        } catch (error) {
          if (signal?.aborted) throw error;
          for (const use of uses) add(use.at, `input \`${use.input}\`: ${use.shown} cannot be read (${describeErrno(error)})`, 'check the file\'s permissions');
          return;
        }
        let probe = probes.get(sha256);
        if (!probe) {
          probe = probeOnce(sha256, absolute);
          probes.set(sha256, probe);
          // A failure is remembered too (same bytes, same verdict), but never left unhandled.
          probe.catch(() => undefined);
        }
        let info: MediaInfo;
        try {
          info = await probe;
        } catch (error) {
          if (signal?.aborted) throw error;
          if (error instanceof TalkError && error.code === 'environment') throw error;
          for (const use of uses) {
            const role = roleOf(use.input, path.extname(absolute).slice(1));
            add(use.at, `input \`${use.input}\`: ${use.shown} does not decode as ${roleWords(role)} (ffprobe: ${probeReason(error, absolute)})`, 'the file may be damaged or not what its extension says; re-export it (e.g. with ffmpeg)');
          }
          return;
        }
        for (const use of uses) {
          const role = roleOf(use.input, path.extname(absolute).slice(1));
          const lack = unfitFor(role, info, path.extname(absolute).slice(1));
          if (lack !== undefined) add(use.at, `input \`${use.input}\`: ${use.shown} ${lack}`, role === 'portrait' || role === 'voice' ? `a ${role} must be ${role === 'portrait' ? 'an image or a video with a picture' : 'audio (or a video with sound) longer than 0 s'}` : `as a .${path.extname(absolute).slice(1)} it must be ${roleWords(role)}`);
        }
      }),
    ),
  );
  const stats = { folders: folders.size, files: byPath.size, probes: probeCount, cachedProbes: cachedCount, ms: Date.now() - started };
  options.onStats?.(stats);
  return { diagnostics, stats };
}
