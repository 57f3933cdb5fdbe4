/**
 * The HTTP side of the local backend: routing, auth, latency, faults, stats and every
 * endpoint of CONTRACT §2, plus the `/__local/*` test hooks of SPEC §5. A malformed request
 * never crashes it: every failure is answered in the contract's error shape.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import path from 'node:path';
import { sleep } from '../core/abort.js';
import { ErrorCodes } from '../contract/codes.js';
import { isExportReady, type Draft } from '../contract/draft.js';
import { isAcceptedExtension, MIME_TYPES, ACCEPTED_EXTENSIONS, type AcceptedExtension } from '../contract/media.js';
import { APP_NAME, ATTRIBUTION_HEADERS, type RouteName } from '../contract/routes.js';
import type { UploadedFile } from '../contract/bodies.js';
import { planTurn } from './agent.js';
import type { FaultEngine } from './faults.js';
import { discardParts, readJson, readMultipart, RequestProblem, sendCodeError, sendFailure, sendJson, sendOk, sendSuccess, statusForCode, type UploadedPart } from './http.js';
import type { IncomingUpload, MediaStore } from './media-store.js';
import { parseFaultRule, type CompatOptions, type FaultKind, type LatencyMap, type LocalEvent, type LocalLogger } from './options.js';
import type { Random } from './random.js';
import type { RenderManager } from './renders.js';
import { tokenHash, type RenderRecord, type SessionRecord, type Store, type UploadRecord, type UserRecord } from './store.js';
import { runTurn, SseWriter, type Scenario } from './turn.js';
import { unreachable } from '../core/unreachable.js';

/** Counters of `GET /__local/stats` (SPEC §5), plus in-flight gauges and cache hits. */
export interface LocalStats {
  requests: Partial<Record<RouteName, number>>;
  tokensIssued: number;
  sessionsCreated: number;
  /** Files stored by uploads, of either form. */
  uploads: number;
  /** Bytes received in file parts of multipart uploads (what the client sent, not what a URL named). */
  uploadBytes: number;
  /** Files uploaded in the URL form (one per URL). */
  urlUploads: number;
  messages: number;
  rendersStarted: number;
  rendersCompleted: number;
  rendersFailed: number;
  renderCacheHits: number;
  creditsSpent: number;
  faultsFired: Record<string, number>;
  inFlight: Partial<Record<RouteName, number>>;
  maxInFlight: Partial<Record<RouteName, number>>;
}

/** Everything the handlers share. */
export interface ServerContext {
  store: Store;
  media: MediaStore;
  renders: RenderManager;
  faults: FaultEngine;
  compat: CompatOptions;
  latency: LatencyMap;
  random: Random;
  heartbeatMs: number;
  tokenTtlMs: number;
  /** The clock of token lifetimes. */
  now: () => number;
  /** Credits of a new anonymous account. */
  anonymousCredits: number;
  /** New anonymous tokens per IP per 7 days, when the quota is on. */
  ipQuota: number | undefined;
  /** When each new anonymous token was issued, per remote address (in memory, like a rate limiter). */
  tokensByIp: Map<string, number[]>;
  silentEditRatio: number;
  noiseRatio: number;
  turnDelays: { generation: number; edit: number };
  maxUploadBytes: number;
  stats: LocalStats;
  baseUrl: () => string;
  emit: (event: Omit<LocalEvent, 'at'>) => void;
  subscribe: (listener: (event: LocalEvent) => void) => () => void;
  logger: LocalLogger | undefined;
  /** Aborts on close: ends stalls, event streams, turns and renders. */
  shutdown: AbortSignal;
  /** Running turns, awaited on close. */
  turns: Set<Promise<void>>;
  /** Sessions with a turn running (for `concurrentTurn=409`). */
  busySessions: Map<string, number>;
}

interface Matched {
  route: RouteName | 'media' | 'local';
  params: string[];
}

const SEG = '([^/]+)';
const ROUTES: { method: string; pattern: RegExp; route: Matched['route'] }[] = [
  { method: 'POST', pattern: /^\/api\/auth\/anonymous-token$/, route: 'auth' },
  { method: 'POST', pattern: /^\/api\/auth\/claim-token$/, route: 'claim' },
  { method: 'POST', pattern: new RegExp(`^/api/tasks/${SEG}/with-session/${APP_NAME}$`), route: 'session' },
  { method: 'POST', pattern: /^\/run_sse$/, route: 'sse' },
  { method: 'POST', pattern: new RegExp(`^/api/upload-video/${APP_NAME}/${SEG}/${SEG}$`), route: 'upload' },
  { method: 'GET', pattern: /^\/api\/credits\/balance\/simple$/, route: 'credits' },
  { method: 'GET', pattern: new RegExp(`^/api/state/${APP_NAME}/${SEG}/${SEG}/latest$`), route: 'state' },
  { method: 'POST', pattern: /^\/api\/render\/proxy\/lambda$/, route: 'render' },
  { method: 'POST', pattern: new RegExp(`^/api/render/proxy/lambda/${SEG}/cancel$`), route: 'render-cancel' },
  { method: 'GET', pattern: new RegExp(`^/api/render/proxy/lambda/${SEG}$`), route: 'render-status' },
  { method: 'GET', pattern: new RegExp(`^/api/render/proxy/${SEG}/download$`), route: 'download' },
  { method: 'GET', pattern: /^\/static\/render-result\/([^/]+)\.mp4$/, route: 'download' },
  { method: 'GET', pattern: /^\/media\/([A-Za-z0-9_-]+\.[A-Za-z0-9]+)$/, route: 'media' },
  { method: 'GET', pattern: /^\/__local\/(stats|events)$/, route: 'local' },
  { method: 'POST', pattern: /^\/__local\/(faults)$/, route: 'local' },
];

const RENDER_ROUTES = new Set<string>(['render', 'render-status', 'render-cancel', 'download']);

function match(method: string, pathname: string): Matched | 'method' | undefined {
  let wrongMethod = false;
  for (const r of ROUTES) {
    const m = r.pattern.exec(pathname);
    if (!m) continue;
    if (r.method !== method) {
      wrongMethod = true;
      continue;
    }
    try {
      return { route: r.route, params: m.slice(1).map((p) => decodeURIComponent(p)) };
    } catch {
      return undefined;
    }
  }
  return wrongMethod ? 'method' : undefined;
}

/** A business error in the style of the route (code envelope or render success envelope). */
function fail(ctx: ServerContext, res: ServerResponse, route: Matched['route'], code: number, message: string): void {
  if (RENDER_ROUTES.has(route)) {
    sendFailure(res, ctx.compat.errors === 'status' ? statusForCode(code) : 200, message, code);
  } else if (route === 'sse') {
    // Pre-stream errors on /run_sse: 1001 as 401 and 1002 as 404 like ADK, others per mode (Q7).
    const forceStatus = code === ErrorCodes.tokenInvalid ? 401 : code === ErrorCodes.sessionNotFound ? 404 : undefined;
    sendCodeError(res, ctx.compat, code, message, { detail: true, ...(forceStatus === undefined ? {} : { forceStatus }) });
  } else {
    sendCodeError(res, ctx.compat, code, message);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** The user behind the bearer token, or undefined after answering 1001. */
function authenticate(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, route: Matched['route']): UserRecord | undefined {
  const auth = header(req, 'authorization') ?? '';
  const token = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
  const record = token ? ctx.store.data.tokens[tokenHash(token)] : undefined;
  const user = record ? ctx.store.data.users[record.userId] : undefined;
  if (!token || !record || !user) {
    fail(ctx, res, route, ErrorCodes.tokenInvalid, 'the token is missing or invalid; request a new one with POST /api/auth/anonymous-token');
    return undefined;
  }
  if (record.expiresAt <= ctx.now()) {
    fail(ctx, res, route, ErrorCodes.tokenInvalid, 'the token has expired; request a new one with the same X-Client-Id');
    return undefined;
  }
  return user;
}

/** The session in a path or body, if the user owns it; `me`, absent or the own id are accepted. */
function ownedSession(ctx: ServerContext, user: UserRecord, userSlot: string | undefined, sessionId: unknown): SessionRecord | undefined {
  if (userSlot !== undefined && userSlot !== 'me' && userSlot !== user.id) return undefined;
  if (typeof sessionId !== 'string') return undefined;
  const session = ctx.store.data.sessions[sessionId];
  return session && session.userId === user.id ? session : undefined;
}

function mediaUrl(ctx: ServerContext, u: UploadRecord): string {
  return `${ctx.baseUrl()}/media/${u.file}`;
}

function describeUpload(ctx: ServerContext, u: UploadRecord): UploadedFile {
  const file: UploadedFile = { filename: u.originalName, file_type: u.kind, cdn_url: mediaUrl(ctx, u), hash: u.sha256, size: u.size };
  if (u.duration !== undefined) file.duration = u.duration;
  if (u.width !== undefined) file.width = u.width;
  if (u.height !== undefined) file.height = u.height;
  if (u.fps !== undefined) file.fps = u.fps;
  return file;
}

/** Rewrite `/media/…` URLs in a stored draft to this server's current address (the port may change). */
function withCurrentUrls(ctx: ServerContext, draft: Draft): Draft {
  const copy = structuredClone(draft);
  for (const track of copy.t ?? []) {
    for (const seg of track.sg ?? []) {
      if (typeof seg.src === 'string') {
        const m = /^https?:\/\/[^/]+(\/media\/[^?#]+)$/.exec(seg.src);
        if (m) seg.src = `${ctx.baseUrl()}${m[1]}`;
      }
    }
  }
  return copy;
}

function outputUrl(ctx: ServerContext, r: RenderRecord): string {
  return `${ctx.baseUrl()}/static/render-result/${encodeURIComponent(r.id)}.mp4`;
}

/** Serve a file, honouring a single `Range: bytes=a-b` (resumable downloads). */
async function sendFile(req: IncomingMessage, res: ServerResponse, file: string, type: string): Promise<void> {
  const info = await stat(file);
  const range = /^bytes=(\d*)-(\d*)$/.exec(header(req, 'range') ?? '');
  let start = 0;
  let end = info.size - 1;
  let status = 200;
  if (range && (range[1] !== '' || range[2] !== '')) {
    if (range[1] === '') start = Math.max(0, info.size - Number(range[2]));
    else {
      start = Number(range[1]);
      if (range[2] !== '') end = Math.min(end, Number(range[2]));
    }
    if (start > end || start >= info.size) {
      res.writeHead(416, { 'content-range': `bytes */${info.size}` });
      res.end();
      return;
    }
    status = 206;
  }
  const headers: Record<string, string | number> = { 'content-type': type, 'content-length': end - start + 1, 'accept-ranges': 'bytes' };
  if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${info.size}`;
  res.writeHead(status, headers);
  await new Promise<void>((resolve) => {
    const stream = createReadStream(file, { start, end });
    stream.on('error', () => {
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      stream.destroy();
      resolve();
    });
    stream.pipe(res);
  });
}

/** Apply a terminal fault. Resolves when the answer (or non-answer) is settled. */
async function applyFault(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, route: RouteName, fault: FaultKind): Promise<void> {
  switch (fault.kind) {
    case 'status': {
      // Injected 429s ask for a 1 s wait so client retry tests stay fast; real quota 429s say 30.
      const headers: Record<string, string> = fault.status === 429 ? { 'retry-after': '1' } : {};
      if (RENDER_ROUTES.has(route)) sendJson(res, fault.status, { success: false, error: `injected fault: HTTP ${fault.status}` }, headers);
      else sendJson(res, fault.status, { code: fault.status, message: `injected fault: HTTP ${fault.status}`, data: null }, headers);
      return;
    }
    case 'code':
      fail(ctx, res, route, fault.code, `injected fault: code ${fault.code}`);
      return;
    case 'reset':
      // Start a real response, then destroy the socket mid-body.
      if (route === 'sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"type":"heartbeat"}\n\n');
      } else if (route === 'download') {
        // As a dropped download looks: part of the file, then nothing.
        res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': '65536' });
        res.write(Buffer.alloc(4096));
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '64' });
        res.write('{"code":0,"data":{');
      }
      await new Promise((resolve) => setImmediate(resolve));
      req.socket.destroy();
      return;
    case 'stall':
      // Accept and never answer; ends when the client gives up or the server closes.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          ctx.shutdown.removeEventListener('abort', done);
          req.socket.destroy();
          resolve();
        };
        res.on('close', done);
        ctx.shutdown.addEventListener('abort', done, { once: true });
      });
      return;
    case 'drop':
    case 'notext':
      return;
    default:
      return unreachable(fault, 'fault');
  }
}

/** Entry point for every request. */
export async function handleRequest(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = Date.now();
  let pathname = '/';
  try {
    pathname = new URL(req.url ?? '/', 'http://local.invalid').pathname;
  } catch {
    // keep '/': answered as not found below
  }
  const method = req.method ?? 'GET';
  const matched = match(method, pathname);
  let routeName: string = 'unknown';
  res.on('finish', () => ctx.logger?.(`${method} ${pathname} ${res.statusCode} ${Date.now() - started}ms [${routeName}]`));
  if (matched === undefined) {
    sendCodeError(res, ctx.compat, 404, `no route ${method} ${pathname}`, { forceStatus: 404 });
    return;
  }
  if (matched === 'method') {
    sendCodeError(res, ctx.compat, 405, `method ${method} not allowed on ${pathname}`, { forceStatus: 405 });
    return;
  }
  routeName = matched.route;
  try {
    if (matched.route === 'local') {
      await handleLocal(ctx, req, res, matched.params[0] ?? '');
      return;
    }
    if (matched.route === 'media') {
      await handleMedia(ctx, req, res, matched.params[0] ?? '');
      return;
    }
    const route = matched.route;
    const { stats } = ctx;
    stats.requests[route] = (stats.requests[route] ?? 0) + 1;
    stats.inFlight[route] = (stats.inFlight[route] ?? 0) + 1;
    stats.maxInFlight[route] = Math.max(stats.maxInFlight[route] ?? 0, stats.inFlight[route] ?? 0);
    res.on('close', () => {
      stats.inFlight[route] = (stats.inFlight[route] ?? 1) - 1;
    });
    // `render=MS` is the least time a render takes (SPEC §5), not a delay of the submit route.
    const delay = route === 'render' ? 0 : (ctx.latency[route] ?? 0);
    if (delay > 0) await sleep(delay, ctx.shutdown);
    const decision = ctx.faults.decide(route);
    if (decision.terminal) {
      await applyFault(ctx, req, res, route, decision.terminal);
      return;
    }
    await routeHandlers[route](ctx, req, res, matched.params, decision);
  } catch (error) {
    if (error instanceof RequestProblem) {
      const route = matched.route;
      if (RENDER_ROUTES.has(route)) sendFailure(res, error.status, error.message, error.code >= 1000 ? error.code : undefined);
      else sendCodeError(res, ctx.compat, error.code, error.message, { forceStatus: error.status });
      return;
    }
    if (ctx.shutdown.aborted) {
      res.destroy();
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    // A client that goes away mid-request (an SSE reader that disconnects, a cancelled
    // upload) is normal traffic, not a fault of the server.
    if (req.destroyed || res.destroyed || (error as NodeJS.ErrnoException).code === 'ECONNRESET' || /^aborted$/.test(message)) {
      ctx.logger?.(`info: client disconnected from ${method} ${pathname} (${message})`);
      res.destroy();
      return;
    }
    ctx.logger?.(`internal error on ${method} ${pathname}: ${message}`);
    if (!res.headersSent) sendJson(res, 500, { code: 500, message: `the local backend failed: ${message}`, data: null, success: false, error: message });
    else res.destroy();
  }
}

/** The anonymous-token quota window per IP (CONTRACT §2.1: 10 per 7 days). */
const IP_QUOTA_WINDOW_MS = 7 * 24 * 3600 * 1000;

type Handler = (ctx: ServerContext, req: IncomingMessage, res: ServerResponse, params: string[], faults: { drop: boolean; notext: boolean }) => Promise<void>;

const routeHandlers: Record<RouteName, Handler> = {
  auth: async (ctx, req, res) => {
    const clientId = header(req, 'x-client-id')?.trim();
    if (!clientId || clientId.length > 64) {
      sendCodeError(res, ctx.compat, 400, 'X-Client-Id is required (a stable id of at most 64 characters, e.g. a UUID)', { forceStatus: 400 });
      return;
    }
    const now = ctx.now();
    const live = ctx.store.liveTokens.get(clientId);
    const liveRecord = live ? ctx.store.data.tokens[tokenHash(live)] : undefined;
    const existing = Object.values(ctx.store.data.tokens).find((t) => t.clientId === clientId && t.expiresAt > now);
    if (existing && ctx.compat.anonRepeat === '429') {
      sendCodeError(res, ctx.compat, 429, 'one anonymous token per client id per 7 days; wait and retry', { forceStatus: 429, headers: { 'retry-after': '30' } });
      return;
    }
    let user = Object.values(ctx.store.data.users).find((u) => u.clientId === clientId);
    if (!user) {
      user = { id: `anon_${randomBytes(8).toString('hex')}`, clientId, available: ctx.anonymousCredits, frozen: 0, spent: 0 };
      ctx.store.data.users[user.id] = user;
    }
    let token: string;
    let expiresAt: number;
    if (live && liveRecord && liveRecord.expiresAt > now) {
      token = live;
      expiresAt = liveRecord.expiresAt;
    } else {
      if (ctx.ipQuota !== undefined) {
        const ip = req.socket.remoteAddress ?? 'unknown';
        const recent = (ctx.tokensByIp.get(ip) ?? []).filter((t) => t > now - IP_QUOTA_WINDOW_MS);
        if (recent.length >= ctx.ipQuota) {
          sendCodeError(res, ctx.compat, 429, `at most ${ctx.ipQuota} anonymous tokens per IP address per 7 days; wait and retry`, { forceStatus: 429, headers: { 'retry-after': '30' } });
          return;
        }
        ctx.tokensByIp.set(ip, [...recent, now]);
      }
      // After expiry (or a restart, which forgets plain tokens) a new token for the same user.
      token = `nmv_usr_${randomBytes(24).toString('base64url')}`;
      expiresAt = now + ctx.tokenTtlMs;
      ctx.store.data.tokens[tokenHash(token)] = { userId: user.id, clientId, expiresAt };
      ctx.store.liveTokens.set(clientId, token);
      ctx.stats.tokensIssued += 1;
      await ctx.store.save({ users: user.id, tokens: tokenHash(token) });
    }
    ctx.emit({ type: 'token:issued', userId: user.id });
    sendOk(res, { token, user_id: user.id, credits: user.available, expires_at: new Date(expiresAt).toISOString() });
  },

  session: async (ctx, req, res, params) => {
    const user = authenticate(ctx, req, res, 'session');
    if (!user) return;
    if (params[0] !== 'me' && params[0] !== user.id) {
      fail(ctx, res, 'session', ErrorCodes.sessionNotFound, 'unknown user in the path; use "me"');
      return;
    }
    const body = (await readJson(req)) as Record<string, unknown>;
    const id = `${randomInt(1, 10)}${Array.from({ length: 18 }, () => randomInt(0, 10)).join('')}`;
    const session: SessionRecord = {
      id,
      taskId: `task_${randomBytes(8).toString('hex')}`,
      userId: user.id,
      taskName: typeof body['task_name'] === 'string' ? body['task_name'] : 'project',
      language: typeof body['language'] === 'string' ? body['language'] : 'en',
      uploads: [],
      draft: undefined,
      canvas: undefined,
      generatedMedia: [],
      createdAt: Date.now(),
    };
    ctx.store.data.sessions[id] = session;
    ctx.stats.sessionsCreated += 1;
    await ctx.store.save({ sessions: id });
    ctx.emit({ type: 'session:created', sessionId: id });
    sendOk(res, { task_id: session.taskId, session_id: id, user_id: user.id });
  },

  claim: async (ctx, req, res) => {
    const user = authenticate(ctx, req, res, 'claim');
    if (!user) return;
    const body = (await readJson(req)) as Record<string, unknown>;
    const session = ownedSession(ctx, user, undefined, body['session_id']);
    if (!session || session.taskId !== body['task_id']) {
      fail(ctx, res, 'claim', ErrorCodes.sessionNotFound, 'no such task and session for this token; create a session first');
      return;
    }
    sendOk(res, { claim_token: `clm_${randomBytes(18).toString('base64url')}`, expires_in: 604800 });
  },

  upload: async (ctx, req, res, params) => {
    const user = authenticate(ctx, req, res, 'upload');
    if (!user) return;
    const session = ownedSession(ctx, user, params[0], params[1]);
    if (!session) {
      fail(ctx, res, 'upload', ErrorCodes.sessionNotFound, 'session not found; create a new session');
      return;
    }
    const type = header(req, 'content-type') ?? '';
    const accepted = `accepted types: ${ACCEPTED_EXTENSIONS.join(', ')}`;
    const stored: UploadRecord[] = [];
    if (type.startsWith('multipart/form-data')) {
      const extOf = (name: string): string => path.extname(name).slice(1).toLowerCase();
      // Streamed to temp files in the media store as they arrive; refused types are not written.
      const parts = await readMultipart(req, ctx.maxUploadBytes, (name) => (isAcceptedExtension(extOf(name)) ? ctx.media.incoming(extOf(name)) : undefined));
      for (const part of parts) ctx.stats.uploadBytes += part.size;
      const adopted = new Set<UploadedPart<IncomingUpload>>();
      try {
        if (parts.length === 0) throw new RequestProblem(400, 400, 'no file in the upload; send files in multipart parts named "files"');
        // All or nothing: validate every part before storing any (CONTRACT §9 Q12).
        for (const part of parts) {
          if (part.target === undefined) {
            fail(ctx, res, 'upload', ErrorCodes.unsupportedType, `unsupported file type "${extOf(part.name) || part.name}"; ${accepted}`);
            return;
          }
          if (part.size > ctx.maxUploadBytes) {
            fail(ctx, res, 'upload', ErrorCodes.fileTooLarge, 'file too large; compress or trim it');
            return;
          }
        }
        for (const part of parts) {
          if (part.target === undefined) continue;
          stored.push(await ctx.media.addFile(session.id, part.name, part.target, part.size, part.sha256, ctx.shutdown));
          adopted.add(part);
        }
      } finally {
        // Stored parts were renamed into the media store: only the others are left to remove.
        await discardParts(parts.filter((p) => !adopted.has(p)));
      }
    } else {
      const body = (await readJson(req)) as Record<string, unknown>;
      const urls = body['urls'];
      if (!Array.isArray(urls) || urls.length === 0 || urls.length > 20 || !urls.every((u) => typeof u === 'string')) {
        throw new RequestProblem(400, 400, 'send multipart parts named "files", or JSON {"urls":[...],"source_type":"url"}');
      }
      const exts: string[] = [];
      const served: (UploadRecord | undefined)[] = [];
      for (const u of urls) {
        let ext = '';
        let url: URL;
        try {
          url = new URL(u);
          ext = path.extname(url.pathname).slice(1).toLowerCase();
        } catch {
          throw new RequestProblem(400, 400, `"${u}" is not a URL`);
        }
        if (!isAcceptedExtension(ext)) {
          fail(ctx, res, 'upload', ErrorCodes.unsupportedType, `unsupported file type "${ext || u}"; ${accepted}`);
          return;
        }
        const own = servedMedia(ctx, url);
        if (own === 'unknown') throw new RequestProblem(404, 404, `no media file at ${url.pathname} on this server; upload the file itself`);
        exts.push(ext);
        served.push(own);
      }
      for (const [i, u] of urls.entries()) {
        const own = served[i];
        // Media this server serves is taken from its store (same bytes, same probe); any other
        // URL gets a placeholder of its kind, since the local backend never fetches the network.
        stored.push(own ? await ctx.media.addFromStored(session.id, own, ctx.shutdown) : await ctx.media.addFromUrl(session.id, u, exts[i] as AcceptedExtension, ctx.shutdown));
      }
      ctx.stats.urlUploads += urls.length;
    }
    for (const u of stored) {
      ctx.store.data.uploads[u.id] = u;
      session.uploads.push(u.id);
      ctx.emit({ type: 'upload:received', sessionId: session.id, file: u.originalName, kind: u.kind, size: u.size });
    }
    ctx.stats.uploads += stored.length;
    await ctx.store.save({ uploads: stored.map((u) => u.id), sessions: session.id });
    sendOk(res, { files: stored.map((u) => describeUpload(ctx, u)), session_state_applied: true });
  },

  credits: async (ctx, req, res) => {
    const user = authenticate(ctx, req, res, 'credits');
    if (!user) return;
    sendOk(res, { available: user.available, frozen: user.frozen, total: user.available + user.frozen });
  },

  state: async (ctx, req, res, params) => {
    const user = authenticate(ctx, req, res, 'state');
    if (!user) return;
    const session = ownedSession(ctx, user, params[0], params[1]);
    if (!session) {
      fail(ctx, res, 'state', ErrorCodes.sessionNotFound, 'session not found; create a new session');
      return;
    }
    const uploads = session.uploads.map((id) => ctx.store.data.uploads[id]).filter((u): u is UploadRecord => u !== undefined && !u.generated);
    const state: Record<string, unknown> = {
      video_infos: uploads.map((u) => describeUpload(ctx, u)),
      canvas_config: session.canvas ?? {},
      video_analyses: {},
      generated_media: session.generatedMedia.map((g) => ({ ...g, url: g.url.replace(/^https?:\/\/[^/]+(?=\/media\/)/, ctx.baseUrl()) })),
    };
    if (session.draft && Object.keys(session.draft).length > 0) state['draft'] = withCurrentUrls(ctx, session.draft);
    else if (ctx.compat.noDraft === 'null') state['draft'] = null;
    else if (ctx.compat.noDraft === 'empty') state['draft'] = {};
    sendOk(res, { session_id: session.id, task_id: session.taskId, task_name: session.taskName, user_id: user.id, state });
  },

  sse: async (ctx, req, res, _params, faults) => {
    const user = authenticate(ctx, req, res, 'sse');
    if (!user) return;
    const body = (await readJson(req)) as Record<string, unknown>;
    const sessionId = body['session_id'] ?? body['sessionId'];
    const userSlot = body['user_id'] ?? body['userId'];
    const session = ownedSession(ctx, user, typeof userSlot === 'string' ? userSlot : undefined, sessionId);
    if (!session) {
      fail(ctx, res, 'sse', ErrorCodes.sessionNotFound, `Session not found: ${typeof sessionId === 'string' ? sessionId : '(none)'}`);
      return;
    }
    const message = (body['new_message'] ?? body['newMessage']) as { parts?: unknown } | undefined;
    const parts = Array.isArray(message?.parts) ? (message.parts as unknown[]) : [];
    const text = parts
      .map((p) => (typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .join('\n')
      .trim();
    if (ctx.compat.concurrentTurn === '409' && (ctx.busySessions.get(session.id) ?? 0) > 0) {
      sendCodeError(res, ctx.compat, 409, 'a turn is already running on this session; wait for it to finish', { forceStatus: 409, detail: true });
      return;
    }
    const scenarioHeader = header(req, 'x-emulator-scenario') ?? /#scenario:([a-z-]+)/.exec(text)?.[1];
    const scenario: Scenario = (['ask', 'error-midstream', 'stall', 'noise'] as const).find((s) => s === scenarioHeader) ?? 'normal';
    const uploads = session.uploads.map((id) => ctx.store.data.uploads[id]).filter((u): u is UploadRecord => u !== undefined);
    const plan = planTurn(text.replace(/#scenario:[a-z-]+/, ''), session, uploads);
    const charged = scenario === 'normal' || scenario === 'noise' ? plan.cost : 0;
    if (user.available < charged) {
      // Refused before any stream starts, and not counted as a message (SPEC §5).
      fail(ctx, res, 'sse', ErrorCodes.outOfCredits, `not enough credits: this turn costs ${charged} and ${user.available} are available; register to keep your work and get more`);
      return;
    }
    ctx.stats.messages += 1;
    const invocationId = `e-${randomUUID()}`;
    const writer = new SseWriter(res, ctx.compat, invocationId);
    ctx.busySessions.set(session.id, (ctx.busySessions.get(session.id) ?? 0) + 1);
    ctx.emit({ type: 'turn:accepted', sessionId: session.id, invocationId, cost: charged, turnClass: plan.turnClass });
    const turn = runTurn(
      {
        compat: ctx.compat,
        heartbeatMs: ctx.heartbeatMs,
        delays: ctx.turnDelays,
        // A turn changes the user's credits, the session (draft, canvas) and may add uploads.
        save: () => ctx.store.save({ users: user.id, sessions: session.id, uploads: session.uploads }),
        onSpent: (credits) => {
          ctx.stats.creditsSpent += credits;
        },
        emit: (type, fields) => ctx.emit({ type, ...fields }),
        signal: ctx.shutdown,
      },
      {
        sessionId: session.id,
        user,
        plan,
        writer,
        scenario,
        drop: faults.drop,
        notext: faults.notext,
        silent: plan.turnClass === 'edit' && ctx.random() < ctx.silentEditRatio,
        noise: ctx.noiseRatio > 0 && ctx.random() < ctx.noiseRatio,
        streaming: body['streaming'] === true,
        applyContext: {
          session,
          mediaUrl: (u) => mediaUrl(ctx, u),
          findFace: (u) => ctx.media.faceOf(u, ctx.shutdown),
          warmVoice: (u) => ctx.media.phonesOf(u, ctx.shutdown),
          makeMusic: async (seconds) => {
            const record = await ctx.media.makeMusic(session.id, seconds, ctx.shutdown);
            ctx.store.data.uploads[record.id] = record;
            session.uploads.push(record.id);
            return record;
          },
        },
      },
    ).finally(() => {
      ctx.busySessions.set(session.id, (ctx.busySessions.get(session.id) ?? 1) - 1);
      ctx.turns.delete(turn);
    });
    ctx.turns.add(turn);
    // The response ends when the turn's stream does; the turn itself outlives a disconnect.
    await new Promise<void>((resolve) => {
      res.on('close', () => resolve());
      void turn.finally(() => resolve());
    });
  },

  render: async (ctx, req, res) => {
    const user = authenticate(ctx, req, res, 'render');
    if (!user) return;
    const missing = ATTRIBUTION_HEADERS.filter((h) => !header(req, h));
    if (missing.length > 0) {
      // Anonymous tokens may export only from an attributed skill (CONTRACT §5, Q9).
      sendFailure(res, 402, `export is blocked for the free plan without attribution (missing ${missing.join(', ')}); register to unlock export`);
      return;
    }
    const body = (await readJson(req)) as Record<string, unknown>;
    const id = body['id'];
    if (typeof id !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(id)) {
      sendFailure(res, 400, 'render id must be a string of 1-128 letters, digits, "_", "-", "." or ":" (e.g. render_<ms>)');
      return;
    }
    const session = ownedSession(ctx, user, undefined, body['sessionId'] ?? body['session_id']);
    if (!session) {
      sendFailure(res, ctx.compat.errors === 'status' ? 404 : 200, 'session not found; create a new session', ErrorCodes.sessionNotFound);
      return;
    }
    const draft = body['draft'];
    if (!isExportReady(draft)) {
      sendFailure(res, 400, 'the draft has no tracks with segments; generate a video before exporting');
      return;
    }
    const output = (typeof body['output'] === 'object' && body['output'] !== null ? body['output'] : {}) as Record<string, unknown>;
    const bad = (key: string, allowed: readonly string[]): boolean => output[key] !== undefined && !(typeof output[key] === 'string' && allowed.includes(output[key]));
    if (bad('format', ['mp4']) || bad('quality', ['high', 'medium', 'low']) || bad('resolution', ['720p', '1080p']) || bad('aspect', ['16:9', '9:16', '1:1'])) {
      sendFailure(res, 400, 'unsupported output options: format mp4; quality high|medium|low; resolution 720p|1080p; aspect 16:9|9:16|1:1');
      return;
    }
    if (ctx.store.data.renders[id]) {
      sendFailure(res, 409, 'duplicate render id; choose a new id');
      return;
    }
    const record: RenderRecord = {
      id,
      userId: user.id,
      sessionId: session.id,
      draft: draft,
      output: output,
      status: 'pending',
      progress: 5,
      createdAt: Date.now(),
    };
    ctx.store.data.renders[id] = record;
    ctx.stats.rendersStarted += 1;
    ctx.emit({ type: 'render:submitted', renderId: id, sessionId: session.id });
    // The job starts while its record is written (a cached render is done in milliseconds);
    // the answer still waits until the record is on disk.
    ctx.renders.start(record);
    await ctx.store.save({ renders: id });
    sendSuccess(res, { id, status: 'pending', progress: record.progress });
  },

  'render-status': async (ctx, req, res, params) => {
    const user = authenticate(ctx, req, res, 'render-status');
    if (!user) return;
    const record = ctx.store.data.renders[params[0] ?? ''];
    if (!record || record.userId !== user.id) {
      sendFailure(res, 404, 'render not found');
      return;
    }
    const url = record.status === 'completed' ? outputUrl(ctx, record) : undefined;
    if (ctx.compat.renderStatus === 'top-level') {
      const body: Record<string, unknown> = { taskId: record.id, id: record.id, status: record.status, progress: record.progress };
      if (url) body['output'] = { url, duration: record.duration, size: record.size };
      if (record.error) body['error'] = record.error;
      sendJson(res, 200, body);
      return;
    }
    const data: Record<string, unknown> = { id: record.id, status: record.status, progress: record.progress, createdAt: record.createdAt };
    if (url) data['outputUrl'] = url;
    if (record.completedAt !== undefined) data['completedAt'] = record.completedAt;
    if (record.error) data['error'] = record.error;
    if (record.notes) data['notes'] = record.notes;
    sendSuccess(res, data);
  },

  'render-cancel': async (ctx, req, res, params) => {
    const user = authenticate(ctx, req, res, 'render-cancel');
    if (!user) return;
    const record = ctx.store.data.renders[params[0] ?? ''];
    if (!record || record.userId !== user.id) {
      sendFailure(res, 404, 'render not found');
      return;
    }
    if (!ctx.renders.cancel(record)) {
      sendFailure(res, 409, `render already ${record.status}; nothing to cancel`);
      return;
    }
    sendSuccess(res, { id: record.id, status: record.status });
  },

  download: async (ctx, req, res, params) => {
    // Two URLs share the route name: the static file outputUrl points to (no auth, like a
    // CDN) and the fallback download route (bearer required).
    const isStatic = (req.url ?? '').startsWith('/static/');
    if (!isStatic && !authenticate(ctx, req, res, 'download')) return;
    const record = ctx.store.data.renders[params[0] ?? ''];
    const file = record ? ctx.renders.fileOf(record) : undefined;
    if (!record || record.status !== 'completed' || !file) {
      sendFailure(res, 404, record ? `render is ${record.status}, not completed` : 'render not found');
      return;
    }
    if (!isStatic && ctx.compat.download === 'json') {
      sendJson(res, 200, { output: { url: outputUrl(ctx, record), size: record.size } });
      return;
    }
    ctx.emit({ type: 'download:started', renderId: record.id, sessionId: record.sessionId });
    await sendFile(req, res, file, 'video/mp4');
    ctx.emit({ type: 'download:finished', renderId: record.id, sessionId: record.sessionId });
  },
};

const MEDIA_PATH = /^\/media\/([A-Za-z0-9_-]+\.[A-Za-z0-9]+)$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** The stored upload `/media/<file>` names, when this server serves it. */
function storedMedia(ctx: ServerContext, file: string): UploadRecord | undefined {
  // Stored names are `<upload id>.<ext>` (posters `<id>-poster.jpg` are not served), so the
  // record is found by key, not by a scan of every upload.
  const byId = ctx.store.data.uploads[file.replace(/\.[^.]+$/, '')];
  return byId?.file === file ? byId : undefined;
}

/**
 * For a URL upload: the stored media a `/media/<file>` URL names (the `cdn_url` this server gave
 * out, on any loopback port, since the in-process backend's port changes from run to run);
 * `unknown` for a media URL of this server that names nothing stored (a stale link: the client
 * falls back to sending the bytes); undefined for any other URL.
 */
function servedMedia(ctx: ServerContext, url: URL): UploadRecord | 'unknown' | undefined {
  const m = MEDIA_PATH.exec(url.pathname);
  if (!m?.[1]) return undefined;
  const record = storedMedia(ctx, m[1]);
  if (record) return record;
  const ours = LOOPBACK_HOSTS.has(url.hostname) || url.host === new URL(ctx.baseUrl()).host;
  return ours ? 'unknown' : undefined;
}

async function handleMedia(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
  const record = storedMedia(ctx, file);
  if (!record) {
    sendCodeError(res, ctx.compat, 404, 'no such media file', { forceStatus: 404 });
    return;
  }
  await sendFile(req, res, ctx.media.pathOf(record.file), MIME_TYPES[record.ext as AcceptedExtension] ?? 'application/octet-stream');
}

async function handleLocal(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, what: string): Promise<void> {
  if (what === 'stats') {
    sendJson(res, 200, { ...ctx.stats, faultsFired: { ...ctx.faults.fired } });
    return;
  }
  if (what === 'faults') {
    const body = (await readJson(req)) as { rules?: unknown; clear?: unknown };
    if (body.clear === true) ctx.faults.clear();
    if (body.rules !== undefined) {
      if (!Array.isArray(body.rules) || !body.rules.every((r) => typeof r === 'string')) {
        sendJson(res, 400, { error: 'send {"rules":["ROUTE:FAULT[:xN|:P%]", ...]} or {"clear":true}' });
        return;
      }
      try {
        ctx.faults.add((body.rules).map(parseFaultRule));
      } catch (error) {
        sendJson(res, 400, { error: error instanceof Error ? error.message : String(error) });
        return;
      }
    }
    sendJson(res, 200, { ok: true });
    return;
  }
  // events: NDJSON, one server event per line, until the client or the server goes away.
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
  res.flushHeaders();
  await new Promise<void>((resolve) => {
    const unsubscribe = ctx.subscribe((event) => res.write(`${JSON.stringify(event)}\n`));
    const done = (): void => {
      unsubscribe();
      ctx.shutdown.removeEventListener('abort', done);
      res.end();
      resolve();
    };
    res.on('close', done);
    ctx.shutdown.addEventListener('abort', done, { once: true });
  });
}
