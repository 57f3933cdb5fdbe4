/**
 * ffprobe and ffmpeg for provenance records and run reports, found the way the local backend
 * finds them (`findFfmpeg`: FFMPEG_PATH/FFPROBE_PATH → PATH → the bundled build) and run with
 * its `runTool`. Missing tools do not fail a run: the record then leaves out media facts and
 * the report its frames.
 */
import { stat } from 'node:fs/promises';
import { findFfmpeg, probeMedia, runTool, type FfmpegTools, type MediaInfo } from '../local-backend/ffmpeg.js';
import { defaultProbeCacheDir, openProbeCache } from '../workflow/index.js';
import type { MediaFacts, ProvenanceDeps } from '../runner/index.js';

/** The tools, or undefined when there are none on this machine. */
export function findMediaTools(env: Readonly<Record<string, string | undefined>>): FfmpegTools | undefined {
  try {
    return findFfmpeg(env);
  } catch {
    return undefined;
  }
}

/** Duration, pixel size and codecs of a media file, from the one ffprobe reader (`probeMedia`). */
export async function probeFacts(ffprobe: string, file: string, signal?: AbortSignal): Promise<MediaFacts> {
  return factsOf(await probeMedia(ffprobe, file, signal));
}

/** What a provenance record says of media ffprobe described. */
function factsOf(info: MediaInfo): MediaFacts {
  const facts: MediaFacts = {};
  // A still image reports a duration of one frame (or none): only moving media has one.
  const still = !info.hasAudio && (info.videoCodec === 'mjpeg' || info.videoCodec === 'png');
  if (info.duration !== undefined && !still) facts.duration = info.duration;
  if (info.width && info.height) {
    facts.width = info.width;
    facts.height = info.height;
  }
  if (info.videoCodec) facts.videoCodec = info.videoCodec;
  if (info.audioCodec) facts.audioCodec = info.audioCodec;
  return facts;
}

/** The first line of `ffmpeg -version` (e.g. `ffmpeg version 5.1.6-0+deb12u1`), or undefined. */
export async function ffmpegVersion(ffmpeg: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    const { stdout } = await runTool(ffmpeg, ['-version'], { signal });
    return stdout.toString('utf8').split('\n')[0]?.replace(/\s+Copyright.*$/, '').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * What the runner needs to write provenance records. `local`: the run uses the local backend,
 * whose renders come from this ffmpeg, so its version is recorded.
 *
 * Media facts are looked up by content: once per content per process (a batch often reuses one
 * voice or one portrait, under many names), then in the probe cache preflight fills
 * (`defaultProbeCacheDir(env)`), and only then from ffprobe. Each
 * ffprobe start blocks the event loop for milliseconds while it forks (most of a queue
 * worker's CPU per job before, bench/notes/queue.md), so a run's inputs, which preflight
 * probed, start none here.
 */
export async function provenanceDeps(env: Readonly<Record<string, string | undefined>>, versions: { talk: string; node: string }, local: boolean, signal?: AbortSignal): Promise<ProvenanceDeps> {
  const tools = findMediaTools(env);
  const probeCacheDir = defaultProbeCacheDir(env);
  const ffmpeg = local && tools ? await ffmpegVersion(tools.ffmpeg, signal) : undefined;
  const cache = tools && probeCacheDir !== undefined ? await openProbeCache(probeCacheDir, tools.ffprobe) : undefined;
  const probed = new Map<string, Promise<MediaFacts | undefined>>();
  const lookUp = async (ffprobe: string, file: string, sha256: string, probeSignal: AbortSignal): Promise<MediaFacts> => {
    const known = await cache?.get(sha256);
    if (known !== undefined) return factsOf(known);
    const info = await probeMedia(ffprobe, file, probeSignal);
    await cache?.set(sha256, info);
    return factsOf(info);
  };
  return {
    probe: (file, sha256, probeSignal) => {
      let facts = probed.get(sha256);
      if (!facts) {
        facts = tools ? lookUp(tools.ffprobe, file, sha256, probeSignal) : Promise.resolve(undefined);
        probed.set(sha256, facts);
        facts.catch(() => probed.delete(sha256));
      }
      return facts;
    },
    versions: { ...versions, ...(ffmpeg ? { ffmpeg } : {}) },
  };
}

/**
 * A poster frame (at a third of the clip) and a strip of `count` frames across it, as JPEGs.
 * Skipped when both exist and are newer than the video (a report written again, a watch folder).
 */
export async function makeFrames(ffmpeg: string, video: string, duration: number, out: { poster: string; strip: string }, options: { count?: number; signal?: AbortSignal } = {}): Promise<void> {
  const count = options.count ?? 6;
  const videoTime = (await stat(video)).mtimeMs;
  const fresh = async (file: string): Promise<boolean> => {
    try {
      return (await stat(file)).mtimeMs >= videoTime;
    } catch {
      return false;
    }
  };
  if ((await fresh(out.poster)) && (await fresh(out.strip))) return;
  const at = Math.max(0, duration / 3).toFixed(3);
  await runTool(ffmpeg, ['-v', 'error', '-y', '-ss', at, '-i', video, '-frames:v', '1', '-vf', 'scale=480:-2', '-q:v', '4', out.poster], { signal: options.signal });
  const rate = (count / Math.max(duration, 0.1)).toFixed(4);
  await runTool(ffmpeg, ['-v', 'error', '-y', '-i', video, '-vf', `fps=${rate},scale=160:-2,tile=${count}x1`, '-frames:v', '1', '-q:v', '5', out.strip], { signal: options.signal });
}
