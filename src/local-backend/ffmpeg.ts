/**
 * Finding and running ffmpeg/ffprobe. Lookup order (so `npm ci` alone prepares a machine):
 * `FFMPEG_PATH` → `ffmpeg` on PATH → the static build shipped by `@ffmpeg-installer/ffmpeg`
 * (same for ffprobe with `FFPROBE_PATH` and `@ffprobe-installer/ffprobe`).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { EnvironmentError, TalkError, environmentErrorFrom } from '../core/errors.js';
import { abortReason } from '../core/abort.js';

/** The two binaries the local backend runs, and where each was found. */
export interface FfmpegTools {
  ffmpeg: string;
  ffprobe: string;
}

function onPath(name: string, env: Readonly<Record<string, string | undefined>>): string | undefined {
  for (const dir of (env['PATH'] ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

function fromInstaller(pkg: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const found = (require(pkg) as { path?: unknown }).path;
    return typeof found === 'string' && existsSync(found) ? found : undefined;
  } catch {
    // The installer throws on unsupported platforms; that only means this fallback is absent.
    return undefined;
  }
}

/** Resolve ffmpeg and ffprobe; throws a TalkError that says how to install them. */
export function findFfmpeg(env: Readonly<Record<string, string | undefined>>): FfmpegTools {
  const ffmpeg = env['FFMPEG_PATH'] || onPath('ffmpeg', env) || fromInstaller('@ffmpeg-installer/ffmpeg');
  const ffprobe = env['FFPROBE_PATH'] || onPath('ffprobe', env) || fromInstaller('@ffprobe-installer/ffprobe');
  if (!ffmpeg || !ffprobe) {
    throw new EnvironmentError('missing-tool', `the local backend needs ${!ffmpeg ? 'ffmpeg' : 'ffprobe'} and found none`, {
      hint: 'install ffmpeg (e.g. `apt-get install ffmpeg`), set FFMPEG_PATH/FFPROBE_PATH, or run `npm ci` to get the bundled build',
    });
  }
  return { ffmpeg, ffprobe };
}

/** Result of a finished child process. */
export interface RunResult {
  stdout: Buffer;
  stderr: string;
}

/**
 * Run a binary to completion; rejects with the tail of stderr on a non-zero exit, or with the
 * signal's reason when aborted (the child is killed then). `onStdout` streams stdout instead
 * of collecting it.
 */
export function runTool(
  binary: string,
  args: readonly string[],
  options: { signal?: AbortSignal | undefined; onStdout?: (chunk: Buffer) => void; cwd?: string } = {},
): Promise<RunResult> {
  const { signal } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (options.onStdout ? options.onStdout(chunk) : out.push(chunk)));
    child.stderr.on('data', (chunk: Buffer) => {
      // Keep only the tail: ffmpeg can be chatty, and the end holds the reason.
      err = (err + chunk.toString('utf8')).slice(-4000);
    });
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(environmentErrorFrom(error) ?? new TalkError('internal', `could not start ${path.basename(binary)}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) reject(abortReason(signal));
      else if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err });
      else reject(new TalkError('internal', `${path.basename(binary)} exited with ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/** What ffprobe tells about a media file. */
export interface MediaInfo {
  /** Seconds; absent for stills. */
  duration?: number;
  width?: number;
  height?: number;
  fps?: number;
  hasVideo: boolean;
  hasAudio: boolean;
}

interface ProbeJson {
  format?: { duration?: string };
  streams?: { codec_type?: string; width?: number; height?: number; avg_frame_rate?: string; duration?: string }[];
}

/** Probe a file; rejects when ffprobe cannot read it. */
export async function probeMedia(ffprobe: string, file: string, signal?: AbortSignal): Promise<MediaInfo> {
  const { stdout } = await runTool(ffprobe, ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', file], { signal });
  const json = JSON.parse(stdout.toString('utf8')) as ProbeJson;
  const video = json.streams?.find((s) => s.codec_type === 'video');
  const audio = json.streams?.find((s) => s.codec_type === 'audio');
  const info: MediaInfo = { hasVideo: video !== undefined, hasAudio: audio !== undefined };
  const duration = Number(json.format?.duration ?? audio?.duration ?? video?.duration);
  if (Number.isFinite(duration) && duration > 0) info.duration = duration;
  if (video?.width && video.height) {
    info.width = video.width;
    info.height = video.height;
  }
  const [num, den] = (video?.avg_frame_rate ?? '').split('/').map(Number);
  if (num && den) info.fps = Math.round((num / den) * 100) / 100;
  return info;
}

const FONT_CANDIDATES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf',
  '/usr/share/fonts/TTF/DejaVuSans-Bold.ttf',
  '/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf',
  '/System/Library/Fonts/Supplemental/Arial Bold.ttf',
  '/Library/Fonts/Arial.ttf',
  'C:\\Windows\\Fonts\\arial.ttf',
];

/** What this ffmpeg can do for text tracks; decided once per server. */
export interface RenderCapabilities {
  /** A font file drawtext can load, when drawtext works at all. */
  fontFile: string | undefined;
}

/**
 * Detect drawtext support: a font file must exist and a one-frame drawtext must succeed (the
 * static build has freetype but no fontconfig, so it needs an explicit font file).
 */
export async function detectCapabilities(ffmpeg: string, env: Readonly<Record<string, string | undefined>>, signal?: AbortSignal): Promise<RenderCapabilities> {
  // Only plain paths: the render links the font into its work folder, but the probe below
  // passes it inline, and filtergraph escaping of odd characters is not worth the risk.
  const candidates = [env['TALK_FONT_FILE'], ...FONT_CANDIDATES].filter(
    (f): f is string => typeof f === 'string' && /^[A-Za-z0-9/._ -]+$/.test(f) && existsSync(f),
  );
  const fontFile = candidates[0];
  if (!fontFile) return { fontFile: undefined };
  try {
    await runTool(
      ffmpeg,
      ['-v', 'error', '-f', 'lavfi', '-i', 'color=c=black:s=64x64:d=0.04', '-vf', `drawtext=fontfile=${fontFile}:text=ok`, '-frames:v', '1', '-f', 'null', '-'],
      { signal },
    );
    return { fontFile };
  } catch {
    return { fontFile: undefined };
  }
}
