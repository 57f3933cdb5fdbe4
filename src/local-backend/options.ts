/**
 * Options of the local backend and the parsers behind `talk serve`'s flags (SPEC §5).
 * Parsers throw `UsageError` with a sentence that names the bad spec and the accepted form.
 */
import type { Clock } from '../core/clock.js';
import { UsageError } from '../core/errors.js';
import type { Timers } from '../core/timers.js';
import { ROUTE_NAMES, type RouteName, type RouteSelector } from '../contract/routes.js';

/**
 * The contract variants where sources disagree (CONTRACT §8, §9). Defaults are the
 * recommended ones; tests of the client switch them one at a time.
 */
export interface CompatOptions {
  /** `envelope`: HTTP 200 + `{code,message}`; `status`: same body, mapped HTTP status; `legacy`: HTTP 200 + `msg` too. */
  errors: 'envelope' | 'status' | 'legacy';
  /** `data`: `{success,data:{status,outputUrl}}`; `top-level`: `{status,progress,output:{url}}`. */
  renderStatus: 'data' | 'top-level';
  /** `json`: `data: {"type":"heartbeat"}`; `empty`: `data:` with nothing; `comment`: `: ping`. */
  heartbeat: 'json' | 'empty' | 'comment';
  /** How state shows "no draft yet": key absent, `null`, or `{}`. */
  noDraft: 'absent' | 'null' | 'empty';
  /** Same client id asking again for a token while one is live: same token, or 429. */
  anonRepeat: 'same' | '429';
  /** Fallback download route: the file itself, or JSON `{output:{url,size}}`. */
  download: 'binary' | 'json';
  /** `/run_sse` payloads: ADK events, or the APIREF pseudo events `{type:"text",content}`. */
  sse: 'adk' | 'legacy';
  /** A second turn on a session whose turn is running: accepted, or refused with 409. */
  concurrentTurn: 'accept' | '409';
}

export const DEFAULT_COMPAT: CompatOptions = {
  errors: 'envelope',
  renderStatus: 'data',
  heartbeat: 'json',
  noDraft: 'absent',
  anonRepeat: 'same',
  download: 'binary',
  sse: 'adk',
  concurrentTurn: 'accept',
};

const COMPAT_VALUES: { [K in keyof CompatOptions]: readonly CompatOptions[K][] } = {
  errors: ['envelope', 'status', 'legacy'],
  renderStatus: ['data', 'top-level'],
  heartbeat: ['json', 'empty', 'comment'],
  noDraft: ['absent', 'null', 'empty'],
  anonRepeat: ['same', '429'],
  download: ['binary', 'json'],
  sse: ['adk', 'legacy'],
  concurrentTurn: ['accept', '409'],
};

/** What a fault does (SPEC §5). */
export type FaultKind =
  | { kind: 'status'; status: number }
  | { kind: 'code'; code: number }
  /** Socket destroyed mid-response. */
  | { kind: 'reset' }
  /** Request accepted, never answered. */
  | { kind: 'stall' }
  /** SSE closes before its final event (the turn still finishes server-side). */
  | { kind: 'drop' }
  /** SSE sends no text event. */
  | { kind: 'notext' }
  /** Render submit only: the render is accepted, then fails as one the backend could not finish. */
  | { kind: 'fail' };

/** One `--fault` rule, parsed. `spec` is the rule as written: the key of `faultsFired`. */
export interface FaultRule {
  spec: string;
  route: RouteSelector;
  fault: FaultKind;
  /** `xN`: fires on the next N matching requests; `P%`: at random; neither: always. */
  times?: number;
  percent?: number;
}

/** Added latency per route; `render` is the least time a render takes. */
export type LatencyMap = Partial<Record<RouteName | 'render', number>>;

/** A server-side event, for ordering tests without sleeps (`GET /__local/events`). */
export interface LocalEvent {
  type: string;
  /** Epoch ms. */
  at: number;
  sessionId?: string;
  renderId?: string;
  [key: string]: unknown;
}

/** Receives request log lines (never tokens). */
export type LocalLogger = (line: string) => void;

/** Options of `startLocalBackend`. All optional. */
export interface LocalBackendOptions {
  /** Address to bind; default 127.0.0.1. */
  host?: string;
  /** Port; 0 (default) picks a free one. */
  port?: number;
  /** Persist state and files here; absent = a temp dir removed on close. */
  dataDir?: string;
  latency?: LatencyMap;
  faults?: FaultRule[];
  /** Seed for random faults and silent edits; same seed, same choices. */
  seed?: number;
  compat?: Partial<CompatOptions>;
  /** Heartbeat interval during a turn; default 15000. */
  heartbeatMs?: number;
  /** Anonymous token lifetime; default 7 days. */
  tokenTtlMs?: number;
  /**
   * Every time the backend reads (default the system's): token lifetimes and quota windows,
   * record and event stamps, SSE event timestamps, request log durations, and a render's
   * elapsed time against `render=MS`. Tests move it instead of waiting.
   */
  clock?: Clock;
  /**
   * What render jobs wait on (default Node's timers): the progress ticks and the `render=MS`
   * floor, both measured on `clock`, so a test that moves a hand-held clock also decides when
   * a render may finish. Route latency, turn pacing and SSE heartbeats keep Node's timers: they
   * pace traffic, and the turns that make a draft must run without the test moving time.
   */
  renderTimers?: Timers;
  /** Credits a new anonymous account starts with; default the contract's grant (100, one generation). */
  anonymousCredits?: number;
  /**
   * New anonymous tokens one IP address may get per 7 days (the contract's "10 per IP"), then
   * 429. Off by default: every loopback client shares one address, so tests and batches would
   * trip it; turn it on to exercise the quota.
   */
  ipQuota?: number;
  /** Share of edit turns that end without text; default 0.3. */
  silentEditRatio?: number;
  /** Share of replies followed by the "temporary issue" noise text; default 0. */
  noiseRatio?: number;
  /** How long the agent "works" on a turn before replying. */
  turnDelayMs?: { generation?: number; edit?: number };
  /** Upload size limit; default 200 MiB (CONTRACT §6). */
  maxUploadBytes?: number;
  /** Explicit ffmpeg binary; otherwise `findFfmpeg`. */
  ffmpegPath?: string;
  /** Explicit ffprobe binary; otherwise `findFfmpeg`. */
  ffprobePath?: string;
  /** Environment used to find ffmpeg; default none (PATH lookup only via the given env). */
  env?: Readonly<Record<string, string | undefined>>;
  logger?: LocalLogger;
}

const ROUTE_OR_RENDER = [...ROUTE_NAMES, 'render'] as const;

function isRouteName(value: string): value is RouteName {
  return (ROUTE_NAMES as readonly string[]).includes(value);
}

/** `ROUTE=MS` (or several joined by commas) → latency map. */
export function parseLatency(spec: string): LatencyMap {
  const out: LatencyMap = {};
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const match = /^([a-z-]+)=(\d+)$/.exec(part);
    const route = match?.[1];
    if (!match || route === undefined || !(ROUTE_OR_RENDER as readonly string[]).includes(route)) {
      throw new UsageError(`bad --latency "${part}": write ROUTE=MS with ROUTE one of ${ROUTE_NAMES.join(', ')}`, {
        hint: 'for example --latency render=2000',
      });
    }
    out[route as RouteName] = Number(match[2]);
  }
  return out;
}

/** `ROUTE:FAULT[:xN|:P%]` → rule (SPEC §5). */
export function parseFaultRule(spec: string): FaultRule {
  const bad = (why: string): UsageError =>
    new UsageError(`bad --fault "${spec}": ${why}`, {
      hint: 'write ROUTE:FAULT[:xN|:P%], FAULT one of status=NNN, code=NNNN, reset, stall, drop, notext, fail; e.g. sse:drop:x1',
    });
  const parts = spec.trim().split(':');
  if (parts.length < 2 || parts.length > 3) throw bad('expected two or three parts separated by ":"');
  const [routePart = '', faultPart = '', countPart] = parts;
  if (routePart !== 'any' && !isRouteName(routePart)) throw bad(`unknown route "${routePart}"`);
  let fault: FaultKind;
  const status = /^status=(\d{3})$/.exec(faultPart);
  const code = /^code=(\d{1,6})$/.exec(faultPart);
  if (status) {
    const n = Number(status[1]);
    if (n < 100 || n > 599) throw bad('status must be between 100 and 599');
    fault = { kind: 'status', status: n };
  } else if (code) fault = { kind: 'code', code: Number(code[1]) };
  else if (faultPart === 'reset' || faultPart === 'stall' || faultPart === 'drop' || faultPart === 'notext' || faultPart === 'fail') fault = { kind: faultPart };
  else throw bad(`unknown fault "${faultPart}"`);
  const rule: FaultRule = { spec: spec.trim(), route: routePart, fault };
  if (countPart !== undefined) {
    const times = /^x(\d+)$/.exec(countPart);
    const percent = /^(\d+(?:\.\d+)?)%$/.exec(countPart);
    if (times) rule.times = Number(times[1]);
    else if (percent && Number(percent[1]) <= 100) rule.percent = Number(percent[1]);
    else throw bad(`"${countPart}" is neither xN nor P% (0-100)`);
  }
  return rule;
}

/** `NAME=VALUE` (or several joined by commas) → partial compat options. */
export function parseCompat(spec: string): Partial<CompatOptions> {
  const out: Record<string, string> = {};
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name = '', value = ''] = part.split('=', 2);
    const allowed = (COMPAT_VALUES as Record<string, readonly string[] | undefined>)[name];
    if (!allowed) {
      throw new UsageError(`bad --compat "${part}": unknown variant "${name}"`, {
        hint: `variants: ${Object.entries(COMPAT_VALUES).map(([k, v]) => `${k}=${v.join('|')}`).join(', ')}`,
      });
    }
    if (!allowed.includes(value)) {
      throw new UsageError(`bad --compat "${part}": ${name} takes ${allowed.join(', ')}`);
    }
    out[name] = value;
  }
  return out;
}
