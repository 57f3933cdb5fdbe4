/**
 * Finding and running ffmpeg/ffprobe, for the local backend (renders, probes of uploads) and for
 * preflight (probes of a workflow's inputs before anything is paid). One finder for both.
 * Lookup order, per binary (so `npm ci` alone prepares a machine):
 * `FFMPEG_PATH` / `FFPROBE_PATH` → `ffmpeg` / `ffprobe` on PATH → the static build shipped by
 * `@ffmpeg-installer/ffmpeg` / `@ffprobe-installer/ffprobe`.
 */
import type { ChildProcessByStdio } from 'node:child_process';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { EnvironmentError, TalkError, environmentErrorFrom } from './errors.js';
import { abortReason } from './abort.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The two binaries, and where each was found. */
export interface FfmpegTools {
  ffmpeg: string;
  ffprobe: string;
}

/** How each tool is looked up: its override variable, its PATH name, its npm build. */
const TOOLS = {
  ffmpeg: { variable: 'FFMPEG_PATH', installer: '@ffmpeg-installer/ffmpeg' },
  ffprobe: { variable: 'FFPROBE_PATH', installer: '@ffprobe-installer/ffprobe' },
} as const;

/** The name of a media tool talk runs. */
export type MediaToolName = keyof typeof TOOLS;

/** An executable named `name` in a folder of the environment's PATH, or undefined. */
export function onPath(name: string, env: Env): string | undefined {
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

/**
 * Resolve one tool; throws an `environment` TalkError saying how to install it. `purpose`
 * finishes "… needs ffprobe" in the message (e.g. "checking the workflow's media").
 */
export function findMediaTool(name: MediaToolName, env: Env, purpose: string): string {
  const { variable, installer } = TOOLS[name];
  const found = env[variable] || onPath(name, env) || fromInstaller(installer);
  if (!found) {
    throw new EnvironmentError('missing-tool', `${purpose} needs ${name} and found none (looked at ${variable}, PATH and ${installer})`, {
      hint: `install ffmpeg, which brings ${name} (e.g. \`apt-get install ffmpeg\` or \`brew install ffmpeg\`), set ${variable} to the binary, or run \`npm ci\` to get the bundled build`,
    });
  }
  return found;
}

/** Resolve ffmpeg and ffprobe for the local backend. */
export function findFfmpeg(env: Env): FfmpegTools {
  const purpose = 'the local backend';
  return { ffmpeg: findMediaTool('ffmpeg', env, purpose), ffprobe: findMediaTool('ffprobe', env, purpose) };
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
export async function runTool(
  binary: string,
  args: readonly string[],
  options: { signal?: AbortSignal | undefined; onStdout?: (chunk: Buffer) => void; cwd?: string; stdin?: Iterable<Uint8Array> | AsyncIterable<Uint8Array> } = {},
): Promise<RunResult> {
  const { signal } = options;
  // Loaded when a tool first runs, not with this module: `talk validate` on inputs whose
  // verdicts are cached starts no process and need not load child_process at all.
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const child = spawn(binary, args, { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], cwd: options.cwd }) as ChildProcessByStdio<Writable | null, Readable, Readable>;
    if (options.stdin && child.stdin) {
      // A child that stops reading early (it had all the frames it wanted, or failed) closes
      // the pipe; its exit code, not the broken pipe, says how it went.
      pipeline(Readable.from(options.stdin, { objectMode: false }), child.stdin).catch(() => undefined);
    }
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
      reject(
        environmentErrorFrom(error) ??
        new EnvironmentError('missing-tool', `could not start ${path.basename(binary)}: ${error.message}`, {
          cause: error,
          hint: 'check FFMPEG_PATH / FFPROBE_PATH, or install ffmpeg (e.g. `apt-get install ffmpeg`), or run `npm ci` to get the bundled build',
        }),
      );
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
  /** ffprobe's codec names, e.g. `h264`, `aac`, `mjpeg`. */
  videoCodec?: string;
  audioCodec?: string;
  hasVideo: boolean;
  hasAudio: boolean;
}

interface ProbeJson {
  format?: { duration?: string };
  streams?: { codec_type?: string; codec_name?: string; width?: number; height?: number; avg_frame_rate?: string; duration?: string }[];
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
  if (video?.codec_name) info.videoCodec = video.codec_name;
  if (audio?.codec_name) info.audioCodec = audio.codec_name;
  return info;
}
