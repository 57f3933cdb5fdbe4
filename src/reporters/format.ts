/**
 * Text pieces every reporter shares: clock times, byte sizes, rates, ETAs, and the one-line
 * description of each event. Pure functions, so plain, tty and GitHub output say the same thing
 * in the same words.
 */
import { isAbsolute, relative } from 'node:path';
import { styleText } from 'node:util';
import { formatDuration } from '../core/abort.js';
import type { StepKind, TalkEvent } from '../core/events.js';

/** The label the runner forwards on a `step:progress` while only SSE heartbeats arrive. */
export const STILL_WORKING_LABEL = 'still working';

/**
 * How long only heartbeats must arrive before reporters say "⏳ still working" (again). The
 * backend client already reports heartbeat-only waits every 2 minutes measured from its own
 * clock, a few milliseconds off the events' stamps: 5 s of slack keeps those from being dropped.
 */
export const STILL_WORKING_EVERY_MS = 115_000;

/** True for a heartbeat-only progress label (`still working`, `still working (4 min)`). */
export function isHeartbeatLabel(label: string | undefined): boolean {
  return label !== undefined && label.toLowerCase().startsWith(STILL_WORKING_LABEL);
}

/** Styles reporters use; each maps to `util.styleText` formats. */
export type Style = 'dim' | 'bold' | 'red' | 'green' | 'yellow' | 'cyan';

/** A painter that is the identity when colour is off (`NO_COLOR`, `--no-color`, not a TTY). */
export type Paint = (style: Style, text: string) => string;

/** Builds a painter; `color: false` returns text untouched, so plain output never has ANSI. */
export function createPaint(color: boolean): Paint {
  if (!color) return (_style, text) => text;
  return (style, text) => styleText(style, text);
}

/** `2026-11-25T09:20:52.123Z` → `09:20:52` in UTC, so CI logs read the same on every runner. */
export function clockTime(ts: string): string {
  const match = /T(\d\d:\d\d:\d\d)/.exec(ts);
  return match?.[1] ?? ts;
}

/** 1536 → `1.5 KB` (decimal units, like transfer tools show). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** Bytes per second → `2.1 MB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** Milliseconds → the house duration form (`850 ms`, `1.5 s`, `2 min 5 s`). */
export function formatElapsed(ms: number): string {
  return formatDuration(Math.max(0, ms));
}

/** Whole seconds for waits: 30000 → `30 s`, 90000 → `1 min 30 s`. */
export function formatWait(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : formatDuration(Math.round(ms / 1000) * 1000);
}

/** Credits with a unit, singular when 1. */
export function formatCredits(credits: number): string {
  return credits === 1 ? '1 credit' : `${credits} credits`;
}

/**
 * Keeps a short window of byte samples per transfer and derives rate and ETA from the events'
 * own timestamps (not the wall clock), so the figures are reproducible from a recorded run.
 */
export class TransferMeter {
  private samples: { at: number; bytes: number }[] = [];
  private static readonly WINDOW_MS = 5_000;

  /** Adds a sample; returns the current rate (bytes/s) and ETA (ms) when they can be known. */
  sample(ts: string, bytes: number, total: number | undefined): { rate?: number; etaMs?: number } {
    const at = Date.parse(ts);
    const last = this.samples.at(-1);
    // A restarted transfer (retry) starts counting from zero again.
    if (last !== undefined && bytes < last.bytes) this.samples = [];
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && at - (this.samples[0]?.at ?? at) > TransferMeter.WINDOW_MS) this.samples.shift();
    const first = this.samples[0];
    if (first === undefined || at <= first.at || bytes <= first.bytes) return {};
    const rate = ((bytes - first.bytes) * 1000) / (at - first.at);
    if (total === undefined || total <= bytes) return { rate };
    return { rate, etaMs: ((total - bytes) / rate) * 1000 };
  }
}

/** What a byte count means for a step: uploads send, exports download. */
function transferVerb(kind: StepKind | undefined): string {
  if (kind === 'upload') return 'uploading';
  if (kind === 'export') return 'downloading';
  return 'transferring';
}

/** `uploading 1.2 MB / 3.4 MB (35%) · 2.1 MB/s · ETA 3 s`. */
export function describeTransfer(
  kind: StepKind | undefined,
  bytes: number,
  total: number | undefined,
  meter: { rate?: number; etaMs?: number },
): string {
  const parts = [transferVerb(kind)];
  if (total !== undefined && total > 0) {
    parts.push(`${formatBytes(bytes)} / ${formatBytes(total)} (${Math.min(100, Math.floor((bytes / total) * 100))}%)`);
  } else {
    parts.push(formatBytes(bytes));
  }
  let text = parts.join(' ');
  if (meter.rate !== undefined) text += ` · ${formatRate(meter.rate)}`;
  if (meter.etaMs !== undefined) text += ` · ETA ${formatWait(meter.etaMs)}`;
  return text;
}

/** `rate limited, retrying in 30 s (attempt 2)`. */
export function describeRetry(reason: string, delayMs: number, attempt: number): string {
  return `${reason}, retrying in ${formatWait(delayMs)} (attempt ${attempt})`;
}

/** First line of a reply, cut to `max` characters, for one-line output. */
export function oneLine(text: string, max = 100): string {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '')?.trim() ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** `step:done` in words: `done in 1.2 s → out/a.mp4 · 100 credits · "Your video is ready"`. */
export function describeDone(event: Extract<TalkEvent, { type: 'step:done' }>, cwd?: string): string {
  let text = `done in ${formatElapsed(event.durationMs)}`;
  if (event.output !== undefined) text += ` → ${displayOutput(event.output, cwd)}`;
  if (event.creditsUsed !== undefined && event.creditsUsed > 0) text += ` · ${formatCredits(event.creditsUsed)}`;
  if (event.reply !== undefined && event.reply.trim() !== '') text += ` · "${oneLine(event.reply, 80)}"`;
  if (event.link !== undefined) text += ` · open: ${event.link}`;
  return text;
}

/** `step:failed` in words: the message, then the stable code. */
export function describeFailure(error: { code: string; message: string }): string {
  return `failed: ${error.message} (${error.code})`;
}

/**
 * A `--verbose` request line: `POST session 200 · 143 ms`. The engine sends it as a `notice`
 * of level `debug` (shown only with `--verbose`); it names the route, never a URL with a
 * query, a header or a body, so it cannot carry a secret.
 */
export function formatRequestLine(request: { method: string; route: string; status: number | undefined; durationMs: number }): string {
  return `${request.method} ${request.route} ${request.status ?? 'no response'} · ${formatElapsed(request.durationMs)}`;
}

/** `/home/me/x/out/a.mp4` → `out/a.mp4` when inside `cwd`; other paths unchanged. */
export function displayOutput(path: string, cwd: string | undefined): string {
  if (cwd === undefined || !isAbsolute(path)) return path;
  const rel = relative(cwd, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}
