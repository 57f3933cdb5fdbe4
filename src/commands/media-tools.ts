/**
 * ffprobe and ffmpeg for provenance records and run reports, found the way the local backend
 * finds them (`findFfmpeg`: FFMPEG_PATH/FFPROBE_PATH → PATH → the bundled build) and run with
 * its `runTool`. Missing tools do not fail a run: the record then leaves out media facts and
 * the report its frames.
 */
import { stat } from 'node:fs/promises';
import { findFfmpeg, probeMedia, runTool, type FfmpegTools } from '../local-backend/ffmpeg.js';
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
  const info = await probeMedia(ffprobe, file, signal);
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
 */
export async function provenanceDeps(env: Readonly<Record<string, string | undefined>>, versions: { talk: string; node: string }, local: boolean, signal?: AbortSignal): Promise<ProvenanceDeps> {
  const tools = findMediaTools(env);
  const ffmpeg = local && tools ? await ffmpegVersion(tools.ffmpeg, signal) : undefined;
  // One probe per file per run: a batch often reuses one voice or one portrait.
  const probed = new Map<string, Promise<MediaFacts | undefined>>();
  return {
    probe: (file, probeSignal) => {
      let facts = probed.get(file);
      if (!facts) {
        facts = tools ? probeFacts(tools.ffprobe, file, probeSignal) : Promise.resolve(undefined);
        probed.set(file, facts);
        facts.catch(() => probed.delete(file));
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
