/**
 * The local backend: the NemoVideo protocol (CONTRACT §2) on loopback, doing the work for
 * real — renders are H.264/AAC MP4 files made with ffmpeg. `talk serve` runs it standalone;
 * `backend: local` runs it in-process for the length of a run; every integration test talks
 * to it over real HTTP. It shares only `contract/` and `core/` with the client.
 */
import { setMaxListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ANONYMOUS_GRANT } from '../contract/pricing.js';
import { systemClock } from '../core/clock.js';
import { UsageError } from '../core/errors.js';
import { systemTimers } from '../core/timers.js';
import { acquirePidLock, type HeldLock } from '../core/pid-lock.js';
import { FaultEngine } from './faults.js';
import { detectCapabilities, findFfmpeg, type FfmpegTools, type RenderCapabilities } from './ffmpeg.js';
import { MediaStore } from './media-store.js';
import { findPhonemeRecogniser } from './phonemes.js';
import { DEFAULT_COMPAT, type FaultRule, type LocalBackendOptions, type LocalEvent } from './options.js';
import { createRandom } from './random.js';
import { RenderManager } from './renders.js';
import { emptyStats, type LocalStats, type ServerContext } from './context.js';
import { handleRequest } from './server.js';
import { Store } from './store.js';

export { parseCompat, parseFaultRule, parseLatency, DEFAULT_COMPAT } from './options.js';
export type { CompatOptions, FaultKind, FaultRule, LatencyMap, LocalBackendOptions, LocalEvent, LocalLogger } from './options.js';
export { findFfmpeg, probeMedia } from './ffmpeg.js';
export type { FfmpegTools, MediaInfo } from './ffmpeg.js';
export type { LocalStats } from './context.js';

/** A running local backend. */
export interface LocalBackend {
  /** `http://HOST:PORT`, no trailing slash. */
  url: string;
  port: number;
  /** Where state and files live (a temp dir when no `dataDir` was given). */
  dataDir: string;
  /** Credits a new anonymous account gets. */
  anonymousCredits: number;
  /** A snapshot of the `/__local/stats` counters. */
  stats(): LocalStats;
  addFaults(rules: FaultRule[]): void;
  clearFaults(): void;
  /** Test hook: add credits to every account (a top-up, as a user's purchase would make). */
  grantCredits(credits: number): Promise<void>;
  /** Server events as they happen (same as `GET /__local/events`); returns an unsubscribe. */
  onEvent(listener: (event: LocalEvent) => void): () => void;
  /** Stop: ends streams and stalls, stops turns and renders (resumed on the next start), persists. */
  close(): Promise<void>;
}

/** Start a local backend. Resolves once it listens. */
export async function startLocalBackend(options: LocalBackendOptions = {}): Promise<LocalBackend> {
  const ephemeral = options.dataDir === undefined;
  const dataDir = options.dataDir ? path.resolve(options.dataDir) : await mkdtemp(path.join(tmpdir(), 'talk-local-'));
  // One process at a time on a data dir: two would each keep their own picture of it in memory
  // and write over each other's journal.
  const lock = ephemeral ? undefined : await lockDataDir(dataDir);
  if (lock?.tookOverFrom) options.logger?.(`took over ${lock.file} from pid ${lock.tookOverFrom.pid}, which is gone`);
  try {
    return await start(options, dataDir, ephemeral, lock);
  } catch (error) {
    await lock?.release();
    throw error;
  }
}

/** The data dir's lock; a live holder is a usage error that says how to share a backend. */
async function lockDataDir(dataDir: string): Promise<HeldLock> {
  await mkdir(dataDir, { recursive: true });
  return acquirePidLock(path.join(dataDir, 'lock'), {
    name: "the local backend's data lock",
    held: (owner, sameHost) =>
      new UsageError(`the local backend data in ${dataDir} is in use by another talk process (pid ${owner.pid} on ${owner.host}, since ${owner.startedAt})`, {
        hint: sameHost
          ? 'to share one local backend, start `talk serve --data-dir <dir>` once and point every run and watcher at it with --backend <its URL>; or give each its own --state-dir'
          : `if that process is really gone, delete ${path.join(dataDir, 'lock')}`,
      }),
    hint: 'check that the data dir is writable',
  });
}

async function start(options: LocalBackendOptions, dataDir: string, ephemeral: boolean, lock: HeldLock | undefined): Promise<LocalBackend> {
  const host = options.host ?? '127.0.0.1';
  const store = new Store(dataDir);
  await store.open();
  // Turns in flight when the last server stopped are gone: give their frozen credits back.
  for (const user of Object.values(store.data.users)) {
    user.available += user.frozen;
    user.frozen = 0;
  }

  const env = options.env ?? {};
  const found: FfmpegTools | undefined = options.ffmpegPath && options.ffprobePath ? undefined : findFfmpeg(env);
  const tools: FfmpegTools = { ffmpeg: options.ffmpegPath ?? found?.ffmpeg ?? 'ffmpeg', ffprobe: options.ffprobePath ?? found?.ffprobe ?? 'ffprobe' };
  const clock = options.clock ?? systemClock;
  const shutdown = new AbortController();
  // Every request, turn and render in flight listens for shutdown; hundreds at once are normal.
  setMaxListeners(0, shutdown.signal);
  let caps: Promise<RenderCapabilities> | undefined;
  const capabilities = (): Promise<RenderCapabilities> => (caps ??= detectCapabilities(tools.ffmpeg, env, shutdown.signal));

  const listeners = new Set<(event: LocalEvent) => void>();
  const emit = (event: Omit<LocalEvent, 'at'>): void => {
    const stamped = { ...event, at: clock.now() } as LocalEvent;
    for (const listener of listeners) listener(stamped);
  };
  const stats = emptyStats();
  const random = createRandom(options.seed);
  const faults = new FaultEngine(random);
  if (options.faults) faults.add(options.faults);
  const latency = { ...(options.latency ?? {}) };

  const media = new MediaStore(store, tools, findPhonemeRecogniser(env));
  const renders = new RenderManager({
    store,
    tools,
    media,
    caps: capabilities,
    minRenderMs: () => latency.render ?? 0,
    listener: ({ type, render }) => {
      if (type === 'render:completed') {
        stats.rendersCompleted += 1;
        if (render.cacheHit) stats.renderCacheHits += 1;
      }
      if (type === 'render:failed') stats.rendersFailed += 1;
      emit({ type, renderId: render.id, sessionId: render.sessionId, status: render.status, progress: render.progress, ...(render.error ? { error: render.error } : {}) });
    },
    shutdown: shutdown.signal,
    clock,
    timers: options.renderTimers ?? systemTimers,
  });

  let baseUrl = '';
  const ctx: ServerContext = {
    store,
    media,
    renders,
    faults,
    compat: { ...DEFAULT_COMPAT, ...(options.compat ?? {}) },
    latency,
    random,
    heartbeatMs: Math.max(1, options.heartbeatMs ?? 15_000),
    tokenTtlMs: options.tokenTtlMs ?? 7 * 24 * 3600 * 1000,
    clock,
    anonymousCredits: options.anonymousCredits ?? ANONYMOUS_GRANT,
    ipQuota: options.ipQuota,
    tokensByIp: new Map(),
    silentEditRatio: options.silentEditRatio ?? 0.3,
    noiseRatio: options.noiseRatio ?? 0,
    turnDelays: { generation: options.turnDelayMs?.generation ?? 300, edit: options.turnDelayMs?.edit ?? 100 },
    maxUploadBytes: options.maxUploadBytes ?? 200 * 1024 * 1024,
    stats,
    baseUrl: () => baseUrl,
    emit,
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    logger: options.logger,
    shutdown: shutdown.signal,
    turns: new Set(),
    busySessions: new Map(),
  };

  const sockets = new Set<Socket>();
  // Requests being handled: close() waits for them, so none writes into the data dir after it.
  const handling = new Set<Promise<void>>();
  const server: Server = createServer({ requestTimeout: 0 }, (req, res) => {
    const handled = handleRequest(ctx, req, res).finally(() => handling.delete(handled));
    handling.add(handled);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A garbage request line must not take the server down: answer 400 and drop the socket.
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"code":400,"message":"malformed request"}');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  baseUrl = `http://${urlHost}:${port}`;

  // Renders that were in flight when the last server stopped are finished now.
  for (const record of Object.values(store.data.renders)) {
    if (record.status === 'pending' || record.status === 'processing') {
      emit({ type: 'render:resumed', renderId: record.id, sessionId: record.sessionId });
      renders.start(record);
    }
  }

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    port,
    dataDir,
    anonymousCredits: ctx.anonymousCredits,
    stats: () => structuredClone({ ...stats, faultsFired: { ...faults.fired } }),
    addFaults: (rules) => faults.add(rules),
    clearFaults: () => faults.clear(),
    async grantCredits(credits) {
      const users = Object.values(ctx.store.data.users);
      for (const user of users) user.available += credits;
      await ctx.store.save({ users: users.map((u) => u.id) });
    },
    onEvent: (listener) => ctx.subscribe(listener),
    close: () =>
      (closing ??= (async () => {
        shutdown.abort();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await Promise.allSettled([...handling, ...ctx.turns]);
        await renders.settle();
        await closed;
        await store.flush();
        await lock?.release();
        // A killed ffmpeg may still be closing its output file as the folder goes: retry the removal.
        if (ephemeral) await rm(dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
      })()),
  };
}
