/**
 * The local backend's use of ffmpeg: which text features a render can use. Finding and running
 * the binaries, and probing media, live in core/media-tools (preflight uses them too); they are
 * re-exported here for the local backend's modules.
 */
import { existsSync } from 'node:fs';
import { runTool } from '../core/media-tools.js';

export { findFfmpeg, probeMedia, runTool, type FfmpegTools, type MediaInfo, type RunResult } from '../core/media-tools.js';

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
