/**
 * Render jobs: `pending` → `processing` (progress) → `completed` | `failed` (or `cancelled`).
 *
 *   submit ─▶ pending ─(encoder slot)─▶ processing ─▶ completed
 *                │                          │    └──▶ failed
 *                └──────── cancel ──────────┴───────▶ cancelled
 *
 * A render takes its real encoding time and at least `render=MS`; progress follows elapsed
 * time against that floor. Finished files are cached by the content hash of draft, media and
 * output options, so a repeated render is a copy, not an encode (SPEC §5).
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, rename, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { sleep } from '../core/abort.js';
import { TrackType, type Draft } from '../contract/draft.js';
import type { Aspect } from '../contract/pricing.js';
import type { RenderCapabilities, FfmpegTools } from './ffmpeg.js';
import { crfFor, draftDurationMs, encodeRender, mediaIdOf, segmentsOf, sizeFor, textsOf, type RenderJob } from './render.js';
import type { RenderRecord, Store, UploadRecord } from './store.js';

/** What the manager reports as a render moves. */
export type RenderListener = (event: { type: 'render:started' | 'render:progress' | 'render:completed' | 'render:failed' | 'render:cancelled'; render: RenderRecord }) => void;

/** Bumped whenever the encoder's output for the same inputs changes, to void old cache files. */
const RENDER_VERSION = 1;

function aspectOfSize(width: number, height: number): Aspect {
  if (Math.abs(width - height) / Math.max(width, height) < 0.05) return '1:1';
  return width > height ? '16:9' : '9:16';
}

function isAspect(value: unknown): value is Aspect {
  return value === '16:9' || value === '9:16' || value === '1:1';
}

/** Runs and tracks render jobs for one server. */
export class RenderManager {
  private readonly limit = pLimit(Math.max(1, Math.floor(availableParallelism() / 2)));
  private readonly controllers = new Map<string, AbortController>();
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly tools: FfmpegTools,
    private readonly caps: () => Promise<RenderCapabilities>,
    private readonly minRenderMs: () => number,
    private readonly listener: RenderListener,
    private readonly shutdown: AbortSignal,
  ) {}

  /** Start (or restart after a server restart) the job of a stored render record. */
  start(record: RenderRecord): void {
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
  cancel(record: RenderRecord): boolean {
    if (record.status !== 'pending' && record.status !== 'processing') return false;
    record.status = 'cancelled';
    record.completedAt = Date.now();
    this.controllers.get(record.id)?.abort();
    void this.store.save();
    this.listener({ type: 'render:cancelled', render: record });
    return true;
  }

  /** Wait for running jobs to stop (after the shutdown signal aborted them). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  /** The file of a finished render. */
  fileOf(record: RenderRecord): string | undefined {
    return record.file ? path.join(this.store.rendersDir, record.file) : undefined;
  }

  private async run(record: RenderRecord, signal: AbortSignal): Promise<void> {
    const startedAt = Date.now();
    const minMs = this.minRenderMs();
    let encodeFraction = 0;
    const update = (): void => {
      if (record.status !== 'processing') return;
      const timeFraction = minMs > 0 ? Math.min(1, (Date.now() - startedAt) / minMs) : 1;
      const progress = Math.max(record.progress, Math.min(99, Math.round(5 + 94 * Math.min(encodeFraction, timeFraction))));
      if (progress !== record.progress) {
        record.progress = progress;
        this.listener({ type: 'render:progress', render: record });
      }
    };
    const ticker = setInterval(update, 100);
    try {
      await this.limit(async () => {
        if (signal.aborted || record.status !== 'pending' && record.status !== 'processing') return;
        record.status = 'processing';
        record.progress = Math.max(record.progress, 5);
        void this.store.save();
        this.listener({ type: 'render:started', render: record });
        const { job, stillSize, cacheKey } = this.resolve(record);
        record.cacheKey = cacheKey;
        const cached = path.join(this.store.rendersDir, `cache-${cacheKey}.mp4`);
        const fileName = `r-${createHash('sha256').update(record.id).digest('hex').slice(0, 24)}.mp4`;
        const target = path.join(this.store.rendersDir, fileName);
        if (existsSync(cached)) {
          record.cacheHit = true;
          encodeFraction = 1;
          await copyFile(cached, target);
        } else {
          const partial = `${cached}.${randomBytes(4).toString('hex')}.part`;
          const { notes } = await encodeRender(this.tools, await this.caps(), job, stillSize, path.join(this.store.workDir, fileName), partial, {
            signal,
            onProgress: (f) => {
              encodeFraction = f;
              update();
            },
          });
          if (notes.length > 0) record.notes = notes;
          encodeFraction = 1;
          await rename(partial, cached);
          await copyFile(cached, target);
        }
        const remaining = minMs - (Date.now() - startedAt);
        if (remaining > 0) await sleep(remaining, signal);
        if (signal.aborted) return;
        const info = await stat(target);
        record.file = fileName;
        record.size = info.size;
        record.duration = job.durationSec;
        record.status = 'completed';
        record.progress = 100;
        record.completedAt = Date.now();
        // Count before persisting: a status read may see `completed` while the write runs.
        this.listener({ type: 'render:completed', render: record });
        await this.store.save();
      });
    } catch (error) {
      // A shutdown leaves the record as it was, so a restarted server picks the job up again.
      if (this.shutdown.aborted || record.status === 'cancelled') return;
      record.status = 'failed';
      record.error = error instanceof Error ? error.message : String(error);
      record.completedAt = Date.now();
      void this.store.save();
      this.listener({ type: 'render:failed', render: record });
    } finally {
      clearInterval(ticker);
    }
  }

  private upload(src: unknown): UploadRecord | undefined {
    const id = mediaIdOf(src);
    return id === undefined ? undefined : this.store.data.uploads[id];
  }

  /** Resolve a draft to files and sizes; throws a plain Error (→ `failed`) when it cannot. */
  resolve(record: RenderRecord): { job: RenderJob; stillSize: { width: number; height: number } | undefined; cacheKey: string } {
    const draft: Draft = record.draft;
    const durationMs = draftDurationMs(draft);
    if (!(durationMs > 0)) throw new Error('the draft has no duration; generate a video first');
    const durationSec = durationMs / 1000;
    const fileOf = (u: UploadRecord): string => path.join(this.store.uploadsDir, u.file);

    const videoSeg = segmentsOf(draft, TrackType.video).find((s) => this.upload(s.src) !== undefined);
    const visual = videoSeg ? this.upload(videoSeg.src) : undefined;
    const stillName = visual?.kind === 'image' ? visual.file : visual?.poster;
    const still = stillName ? path.join(this.store.uploadsDir, stillName) : undefined;
    const stillSize = still && visual?.width && visual.height ? { width: visual.width, height: visual.height } : undefined;

    const voices: RenderJob['voices'] = [];
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
      else voices.push({ file: fileOf(media), startSec, durationSec: segSec, volume, loop: seg.loop === true });
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
    const media = [visual, ...segmentsOf(draft, TrackType.audio).map((s) => this.upload(s.src))].map((u) => u?.sha256 ?? null);
    const cacheKey = createHash('sha256')
      .update(JSON.stringify({ v: RENDER_VERSION, job: { ...job, still: visual?.sha256 ?? null, voices: voices.map((v) => ({ ...v, file: path.basename(v.file) })), music: music.map((m) => ({ ...m, file: path.basename(m.file) })) }, media }))
      .digest('hex')
      .slice(0, 32);
    return { job, stillSize, cacheKey };
  }
}
