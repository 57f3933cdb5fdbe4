/**
 * Render jobs: `pending` → `processing` (progress) → `completed` | `failed` (or `cancelled`).
 *
 *   submit ─▶ pending ─▶ processing (copy, or encoder slot) ─▶ completed
 *                │                          │    └──▶ failed
 *                └──────── cancel ──────────┴───────▶ cancelled
 *
 * A render takes its real encoding time and at least `render=MS`; progress follows elapsed
 * time against that floor. Finished files are cached by the content hash of draft, media and
 * output options, so a repeated render is a copy, not an encode (SPEC §5). Only real encodes
 * are bounded (one per core); copies and the `render=MS` wait hold no slot, so a batch of
 * identical renders takes about one encode plus the floor, not N of them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, link, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { createAtomicTarget } from '../core/atomic-write.js';
import type { Clock } from '../core/clock.js';
import { sleepOn, type Timers } from '../core/timers.js';
import { TrackType, type Draft } from '../contract/draft.js';
import type { Aspect } from '../contract/pricing.js';
import type { RenderCapabilities, FfmpegTools } from './ffmpeg.js';
import { crfFor, draftDurationMs, encodeRender, mediaIdOf, segmentsOf, sizeFor, textsOf, type RenderJob } from './render.js';
import type { StoredRender, Store, StoredUpload } from './store.js';
import type { MediaStore } from './media-store.js';

/** What the manager reports as a render moves. */
export type RenderListener = (event: { type: 'render:started' | 'render:progress' | 'render:completed' | 'render:failed' | 'render:cancelled'; render: StoredRender }) => void;

/** Bumped whenever the encoder's output for the same inputs changes, to void old cache files. */
const RENDER_VERSION = 3;

/**
 * Give a render its own name for a cached file: a hard link (instant, no bytes copied; cache
 * files are never rewritten in place, only replaced by rename), else a copy.
 */
async function linkOrCopy(cached: string, target: string): Promise<void> {
  await rm(target, { force: true });
  try {
    await link(cached, target);
  } catch {
    await copyFile(cached, target);
  }
}

function aspectOfSize(width: number, height: number): Aspect {
  if (Math.abs(width - height) / Math.max(width, height) < 0.05) return '1:1';
  return width > height ? '16:9' : '9:16';
}

function isAspect(value: unknown): value is Aspect {
  return value === '16:9' || value === '9:16' || value === '1:1';
}

/** One encode in flight, shared by every render that needs its cache key. */
interface SharedEncode {
  waiters: number;
  controller: AbortController;
  progress: Set<(fraction: number) => void>;
  done: Promise<{ notes: string[] }>;
}

/** What a render manager works with. */
export interface RenderManagerDeps {
  store: Store;
  tools: FfmpegTools;
  media: MediaStore;
  caps: () => Promise<RenderCapabilities>;
  /** The least time a render takes (`render=MS`), read as each job starts. */
  minRenderMs: () => number;
  listener: RenderListener;
  /** Aborts every job on server shutdown. */
  shutdown: AbortSignal;
  /** Elapsed time and the records' `createdAt`/`completedAt`. */
  clock: Clock;
  /** The progress ticks and the `render=MS` floor wait on these. */
  timers: Timers;
}

/** Runs and tracks render jobs for one server. */
export class RenderManager {
  /** Real encodes only: one per core (ffmpeg's x264 uses several threads; this bounds memory). */
  private readonly limit = pLimit(Math.max(1, availableParallelism()));
  private readonly encoding = new Map<string, SharedEncode>();
  private readonly controllers = new Map<string, AbortController>();
  private readonly running = new Set<Promise<void>>();
  /** Encodes still going, including those every waiter has left (they stop and clean up). */
  private readonly encodes = new Set<Promise<unknown>>();

  private readonly store: Store;
  private readonly tools: FfmpegTools;
  private readonly media: MediaStore;
  private readonly caps: () => Promise<RenderCapabilities>;
  private readonly minRenderMs: () => number;
  private readonly listener: RenderListener;
  private readonly shutdown: AbortSignal;
  private readonly clock: Clock;
  private readonly timers: Timers;

  constructor(deps: RenderManagerDeps) {
    this.store = deps.store;
    this.tools = deps.tools;
    this.media = deps.media;
    this.caps = deps.caps;
    this.minRenderMs = deps.minRenderMs;
    this.listener = deps.listener;
    this.shutdown = deps.shutdown;
    this.clock = deps.clock;
    this.timers = deps.timers;
  }

  /** Start (or restart after a server restart) the job of a stored render record. */
  start(record: StoredRender): void {
    const controller = new AbortController();
    this.controllers.set(record.id, controller);
    const signal = AbortSignal.any([controller.signal, this.shutdown]);
    const task = this.run(record, signal).finally(() => {
      this.controllers.delete(record.id);
      this.running.delete(task);
    });
    this.running.add(task);
  }

  /** Cancel a pending or processing job. Returns false when it had already finished. */
  cancel(record: StoredRender): boolean {
    if (record.status !== 'pending' && record.status !== 'processing') return false;
    record.status = 'cancelled';
    record.completedAt = this.clock.now();
    this.controllers.get(record.id)?.abort();
    void this.store.save({ renders: record.id });
    this.listener({ type: 'render:cancelled', render: record });
    return true;
  }

  /** Wait for running jobs and their encodes to stop (after the shutdown signal aborted them). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running, ...this.encodes]);
  }

  /** The file of a finished render. */
  fileOf(record: StoredRender): string | undefined {
    return record.file ? path.join(this.store.rendersDir, record.file) : undefined;
  }

  private async run(record: StoredRender, signal: AbortSignal): Promise<void> {
    const startedAt = this.clock.now();
    const minMs = this.minRenderMs();
    let encodeFraction = 0;
    const update = (): void => {
      if (record.status !== 'processing') return;
      const timeFraction = minMs > 0 ? Math.min(1, (this.clock.now() - startedAt) / minMs) : 1;
      // ffmpeg reports every half second, so a short encode may say nothing until it ends;
      // meanwhile the floor's clock alone moves the bar, up to halfway.
      const fraction = Math.min(Math.max(encodeFraction, timeFraction / 2), timeFraction);
      const progress = Math.max(record.progress, Math.min(99, Math.round(5 + 94 * fraction)));
      if (progress !== record.progress) {
        record.progress = progress;
        this.listener({ type: 'render:progress', render: record });
      }
    };
    const stopTicker = this.timers.setInterval(update, 100);
    try {
      if (signal.aborted || (record.status !== 'pending' && record.status !== 'processing')) return;
      record.status = 'processing';
      record.progress = Math.max(record.progress, 5);
      void this.store.save({ renders: record.id });
      this.listener({ type: 'render:started', render: record });
      if (record.injectedFailure !== undefined) throw new Error(record.injectedFailure);
      const { job, stillSize, cacheKey, visual, voice } = this.resolve(record);
      record.cacheKey = cacheKey;
      const cached = this.cacheFile(cacheKey);
      const fileName = `r-${createHash('sha256').update(record.id).digest('hex').slice(0, 24)}.mp4`;
      const target = path.join(this.store.rendersDir, fileName);
      if (existsSync(cached)) {
        record.cacheHit = true;
      } else {
        // Only real encodes take a slot; identical renders in flight share one encode.
        const { notes, joined } = await this.encodeOnce(cacheKey, job, stillSize, visual, voice, signal, (f) => {
          encodeFraction = f;
          update();
        });
        if (notes.length > 0) record.notes = notes;
        // Joining another render's encode is a hit too: this render encoded nothing itself.
        if (joined) record.cacheHit = true;
      }
      encodeFraction = 1;
      await linkOrCopy(cached, target);
      // `render=MS` is a floor on the whole render, waited outside any slot so it never
      // delays another render's encode.
      const remaining = minMs - (this.clock.now() - startedAt);
      if (remaining > 0) await sleepOn(this.timers, remaining, signal);
      if (signal.aborted) return;
      const info = await stat(target);
      record.file = fileName;
      record.size = info.size;
      record.duration = job.durationSec;
      record.status = 'completed';
      record.progress = 100;
      record.completedAt = this.clock.now();
      // Count before persisting: a status read may see `completed` while the write runs.
      this.listener({ type: 'render:completed', render: record });
      await this.store.save({ renders: record.id });
    } catch (error) {
      // A shutdown leaves the record as it was, so a restarted server picks the job up again.
      if (this.shutdown.aborted || record.status === 'cancelled') return;
      record.status = 'failed';
      record.error = error instanceof Error ? error.message : String(error);
      record.completedAt = this.clock.now();
      void this.store.save({ renders: record.id });
      this.listener({ type: 'render:failed', render: record });
    } finally {
      stopTicker();
    }
  }

  private cacheFile(cacheKey: string): string {
    return path.join(this.store.rendersDir, `cache-${cacheKey}.mp4`);
  }

  /**
   * Encode `job` into the cache file of `cacheKey`, in an encoder slot. A render asking for a
   * key already being encoded joins that encode instead of starting its own; the encode is
   * aborted only when every render waiting for it has gone (cancelled) or the server stops.
   */
  private async encodeOnce(
    cacheKey: string,
    job: RenderJob,
    stillSize: { width: number; height: number } | undefined,
    visual: StoredUpload | undefined,
    voice: StoredUpload | undefined,
    signal: AbortSignal,
    onProgress: (fraction: number) => void,
  ): Promise<{ notes: string[]; joined: boolean }> {
    let shared = this.encoding.get(cacheKey);
    const joined = shared !== undefined;
    if (!shared) {
      const controller = new AbortController();
      const entry: SharedEncode = { waiters: 0, controller, progress: new Set(), done: Promise.resolve({ notes: [] }) };
      const encodeSignal = AbortSignal.any([controller.signal, this.shutdown]);
      entry.done = this.limit(async () => {
        encodeSignal.throwIfAborted();
        // ffmpeg writes the temp file; the cache file appears whole or not at all. No fsync, as
        // before: a cache file lost to a power cut is encoded again.
        const cached = createAtomicTarget(this.cacheFile(cacheKey), { durable: false });
        try {
          // The face is looked for once per portrait (the turn usually did already); only a
          // real encode needs it, never a cached copy.
          const face = job.still && visual ? await this.media.faceOf(visual, encodeSignal) : undefined;
          // So are the voice's phonemes, when a recogniser is installed (else the spectrum serves).
          const phones = face && voice ? await this.media.phonesOf(voice, encodeSignal) : undefined;
          const result = await encodeRender(this.tools, await this.caps(), job, stillSize, path.join(this.store.workDir, `${cacheKey}-${randomBytes(4).toString('hex')}`), cached.tempPath, {
            face,
            phones,
            phonemesInstalled: this.media.phonemes !== undefined,
            signal: encodeSignal,
            onProgress: (f) => {
              for (const listener of entry.progress) listener(f);
            },
          });
          await cached.commit();
          return result;
        } catch (error) {
          await cached.abort();
          throw error;
        }
      }).finally(() => this.encoding.delete(cacheKey));
      const settled: Promise<unknown> = entry.done.catch(() => undefined).finally(() => this.encodes.delete(settled));
      this.encodes.add(settled);
      this.encoding.set(cacheKey, entry);
      shared = entry;
    }
    const entry = shared;
    entry.waiters += 1;
    entry.progress.add(onProgress);
    const leave = (): void => {
      entry.progress.delete(onProgress);
      entry.waiters -= 1;
      if (entry.waiters > 0) return;
      // Nobody wants this encode any more: forget it first so a new render starts afresh.
      if (this.encoding.get(cacheKey) === entry) this.encoding.delete(cacheKey);
      entry.controller.abort();
    };
    try {
      // This render's own cancel ends its wait at once; the shared encode goes on for others.
      const { notes } = await new Promise<{ notes: string[] }>((resolve, reject) => {
        const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('render aborted'));
        if (signal.aborted) {
          onAbort();
          return;
        }
        signal.addEventListener('abort', onAbort, { once: true });
        entry.done.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
      });
      return { notes, joined };
    } finally {
      leave();
    }
  }

  private upload(src: unknown): StoredUpload | undefined {
    const id = mediaIdOf(src);
    return id === undefined ? undefined : this.store.data.uploads[id];
  }

  /** Resolve a draft to files and sizes; throws a plain Error (→ `failed`) when it cannot. */
  resolve(record: StoredRender): {
    job: RenderJob;
    stillSize: { width: number; height: number } | undefined;
    cacheKey: string;
    visual: StoredUpload | undefined;
    /** The first voice's upload: its phonemes shape the mouth. */
    voice: StoredUpload | undefined;
  } {
    const draft: Draft = record.draft;
    const durationMs = draftDurationMs(draft);
    if (!(durationMs > 0)) throw new Error('the draft has no duration; generate a video first');
    const durationSec = durationMs / 1000;
    const fileOf = (u: StoredUpload): string => path.join(this.store.uploadsDir, u.file);

    const videoSeg = segmentsOf(draft, TrackType.video).find((s) => this.upload(s.src) !== undefined);
    const visual = videoSeg ? this.upload(videoSeg.src) : undefined;
    const stillName = visual?.kind === 'image' ? visual.file : visual?.poster;
    const still = stillName ? path.join(this.store.uploadsDir, stillName) : undefined;
    const stillSize = still && visual?.width && visual.height ? { width: visual.width, height: visual.height } : undefined;

    const voices: RenderJob['voices'] = [];
    let voice: StoredUpload | undefined;
    const music: RenderJob['music'] = [];
    for (const seg of segmentsOf(draft, TrackType.audio)) {
      const media = this.upload(seg.src);
      if (!media) continue;
      const startSec = (Number(seg.st) || 0) / 1000;
      const segSec = Math.min((Number(seg.d) || durationMs) / 1000, durationSec - startSec);
      if (segSec <= 0) continue;
      const volume = typeof seg.vol === 'number' ? Math.max(0, Math.min(2, seg.vol)) : 1;
      const isMusic = seg.role === 'music' || (seg.role !== 'voice' && (media.role === 'music' || volume < 0.6));
      if (isMusic) music.push({ file: fileOf(media), startSec, durationSec: segSec, volume });
      else {
        voices.push({ file: fileOf(media), startSec, durationSec: segSec, volume, loop: seg.loop === true });
        voice ??= media;
      }
    }

    const out = record.output;
    const canvasAspect = isAspect(draft.m?.ratio) ? draft.m.ratio : undefined;
    const aspect: Aspect = isAspect(out.aspect)
      ? out.aspect
      : canvasAspect ?? (visual?.width && visual.height ? aspectOfSize(visual.width, visual.height) : '9:16');
    let size = sizeFor(aspect, out.resolution === '720p' ? '720p' : '1080p');
    if (!out.resolution && !out.aspect && typeof draft.m?.width === 'number' && typeof draft.m.height === 'number' && draft.m.width > 0 && draft.m.height > 0) {
      // The draft's own canvas decides when the client asks for nothing (SPEC §5).
      size = { width: Math.round(draft.m.width / 2) * 2, height: Math.round(draft.m.height / 2) * 2 };
    }
    const job: RenderJob = {
      ...size,
      durationSec,
      crf: crfFor((out.quality) ?? 'high'),
      still,
      voices,
      music,
      texts: textsOf(draft, durationSec),
      loopMotion: videoSeg?.loop === true,
    };
    // The key names media by content hash (computed once at upload), never by the file names
    // the server chose, so identical media in different sessions share one cached render.
    const hashOf = new Map<string, string>();
    for (const seg of segmentsOf(draft, TrackType.audio)) {
      const media = this.upload(seg.src);
      if (media) hashOf.set(fileOf(media), media.sha256);
    }
    const cacheKey = createHash('sha256')
      .update(
        JSON.stringify({
          v: RENDER_VERSION,
          // The mouth's classes differ with and without a phoneme recogniser.
          mouth: this.media.phonemes ? 'phonemes' : 'spectral',
          job: {
            ...job,
            still: visual?.sha256 ?? null,
            voices: voices.map((v) => ({ ...v, file: hashOf.get(v.file) ?? null })),
            music: music.map((m) => ({ ...m, file: hashOf.get(m.file) ?? null })),
          },
        }),
      )
      .digest('hex')
      .slice(0, 32);
    return { job, stillSize, cacheKey, visual, voice };
  }
}
