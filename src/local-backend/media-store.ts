/**
 * Storing media: uploaded files under names the server chooses (the client's name is kept as
 * metadata only, so no path traversal is possible), probed with ffprobe once per distinct
 * content (by the SHA-256 the upload path computed while writing); URL uploads are
 * stood in for by generated placeholders (the local backend never fetches the network); the
 * agent's background-music bed is synthesised here. The face in a portrait is found here too,
 * once per distinct content, and kept beside the uploads (`face-<sha256>.json`); so are a voice's
 * phonemes when a recogniser is installed (`phones-<sha256>.json`, see `phonemes.ts`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, link, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createAtomicTarget, writeFileAtomic, type AtomicTarget } from '../core/atomic-write.js';
import { sanitizeFileName } from '../core/paths.js';
import { mediaKindOf, type MediaKind } from '../contract/media.js';
import { probeMedia, runTool, type FfmpegTools, type MediaInfo } from './ffmpeg.js';
import { decodeRgb, detectionSize, findFaceInPixels, type FaceLandmarks } from './face.js';
import { recognisePhones, type Phone, type PhonemeRecogniser } from './phonemes.js';
import type { Store, StoredUpload } from './store.js';

const MUSIC_NAME = /music|bgm|song|soundtrack|beat|melody|instrumental/i;

/** Bumped when the face finder's output changes, so cached faces are looked for again. */
const FACE_CACHE_VERSION = 1;
/** Bumped when the phoneme recogniser's settings change. */
const PHONES_CACHE_VERSION = 1;

function newId(): string {
  return `u${randomBytes(9).toString('hex')}`;
}

/** An upload being received: the target its bytes are written to, and the name it will be stored under. */
export interface IncomingUpload extends AtomicTarget {
  id: string;
  file: string;
  ext: string;
}

/** What probing a file found, kept per content hash. */
interface Probed {
  info: MediaInfo;
  /** A poster already taken from identical bytes (video only). */
  poster: string | undefined;
}

/** Where stored media are probed and written. */
export class MediaStore {
  /**
   * Probe results by content hash and kind: identical bytes have the same duration and size,
   * so a batch of identical uploads runs ffprobe (and the poster extraction) once.
   */
  private readonly probed = new Map<string, Promise<Probed>>();
  /** Faces by the portrait's content hash (`null`: looked, found none). */
  private readonly faces = new Map<string, Promise<FaceLandmarks | null>>();
  /**
   * Faces by the hash of the pixels the detector saw: files that differ only in metadata (a
   * batch of re-exported or re-tagged copies of one photo) are looked at once.
   */
  private readonly facesByPixels = new Map<string, Promise<FaceLandmarks | null>>();
  /** Phones by the voice's content hash (`null`: the recogniser failed on it). */
  private readonly phones = new Map<string, Promise<Phone[] | null>>();
  private seeded = false;

  constructor(
    private readonly store: Store,
    private readonly tools: FfmpegTools,
    /** The phoneme recogniser, when one is installed (optional: see `phonemes.ts`). */
    readonly phonemes?: PhonemeRecogniser,
  ) {}

  /**
   * The phones of an audio upload, found once per content hash (in memory and on disk), or
   * undefined without a recogniser or when it failed on this file: the caller then uses the
   * spectral classes. Never throws but for an abort.
   */
  async phonesOf(upload: StoredUpload, signal?: AbortSignal): Promise<Phone[] | undefined> {
    const rec = this.phonemes;
    if (!rec || upload.kind !== 'audio') return undefined;
    let found = this.phones.get(upload.sha256);
    if (!found) {
      const cacheFile = this.pathOf(`phones-${upload.sha256}.json`);
      found = (async (): Promise<Phone[] | null> => {
        try {
          const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as { v?: unknown; phones?: Phone[] | null };
          if (cached.v === PHONES_CACHE_VERSION && cached.phones !== undefined) return cached.phones;
        } catch {
          // Not recognised yet (or an unreadable cache file): recognise now.
        }
        let phones: Phone[] | null;
        try {
          phones = await recognisePhones(rec, this.tools.ffmpeg, this.pathOf(upload.file), this.store.uploadsDir, signal);
        } catch (error) {
          if (signal?.aborted) throw error;
          // A recogniser that fails on a file is remembered as such: the spectrum serves.
          phones = null;
        }
        // A cache: worth no disk flush (a lost one is recognised again).
        await writeFileAtomic(cacheFile, JSON.stringify({ v: PHONES_CACHE_VERSION, phones }), { durable: false });
        return phones;
      })();
      this.phones.set(upload.sha256, found);
      // An aborted recognition is not remembered: the next one runs anew.
      found.catch(() => this.phones.delete(upload.sha256));
    }
    return (await found) ?? undefined;
  }

  pathOf(file: string): string {
    return path.join(this.store.uploadsDir, file);
  }

  /**
   * Where an upload of type `ext` still arriving is written: its stored name is chosen now (the
   * client's name is never a path), its bytes go to a temp file beside it until `addFile`.
   */
  incoming(ext: string): IncomingUpload {
    const id = newId();
    const file = `${id}.${ext}`;
    // No fsync, as before: the upload's record is what the journal makes durable.
    return { ...createAtomicTarget(this.pathOf(file), { durable: false }), id, file, ext };
  }

  /** Store one uploaded file (already validated) for a session. */
  async add(sessionId: string, originalName: string, ext: string, data: Buffer, signal: AbortSignal, generated = false): Promise<StoredUpload> {
    const id = newId();
    const file = `${id}.${ext}`;
    await writeFile(this.pathOf(file), data);
    const sha256 = createHash('sha256').update(data).digest('hex');
    return this.register(id, file, sessionId, originalName, ext, data.length, sha256, signal, generated);
  }

  /**
   * Store an upload that was streamed to an `incoming` target: committed under its
   * server-chosen name, never read into memory.
   */
  async addFile(sessionId: string, originalName: string, upload: IncomingUpload, size: number, sha256: string, signal: AbortSignal): Promise<StoredUpload> {
    await upload.commit();
    return this.register(upload.id, upload.file, sessionId, originalName, upload.ext, size, sha256, signal, false);
  }

  private async register(
    id: string,
    file: string,
    sessionId: string,
    originalName: string,
    ext: string,
    size: number,
    sha256: string,
    signal: AbortSignal,
    generated: boolean,
  ): Promise<StoredUpload> {
    const kind = mediaKindOf(ext) as MediaKind;
    const record: StoredUpload = {
      id,
      sessionId,
      file,
      originalName: sanitizeFileName(originalName),
      ext,
      kind,
      size,
      sha256,
    };
    if (generated) record.generated = true;
    if (kind === 'audio') record.role = MUSIC_NAME.test(originalName) ? 'music' : 'voice';
    try {
      const { info, poster: posterSource } = await this.probe(sha256, kind, id, file, signal);
      if (info.duration !== undefined && kind !== 'image') record.duration = Math.round(info.duration * 1000) / 1000;
      if (info.width !== undefined) record.width = info.width;
      if (info.height !== undefined) record.height = info.height;
      if (info.fps !== undefined && kind === 'video') record.fps = info.fps;
      if (posterSource !== undefined) {
        // Each upload owns its poster file; identical bytes give an identical first frame.
        const poster = `${id}-poster.jpg`;
        if (posterSource !== poster) await copyFile(this.pathOf(posterSource), this.pathOf(poster));
        record.poster = poster;
      }
    } catch {
      // Unreadable media is still stored (the real service accepts by extension); a render
      // that needs it fails with ffmpeg's reason instead.
    }
    return record;
  }

  /** Probe `file` (and take a video's poster), or reuse what identical bytes gave before. */
  private probe(sha256: string, kind: MediaKind, id: string, file: string, signal: AbortSignal): Promise<Probed> {
    const key = `${kind}:${sha256}`;
    if (!this.seeded) {
      // What earlier runs of this data dir probed counts too: a restarted server does not
      // probe bytes it has already seen.
      this.seeded = true;
      for (const u of Object.values(this.store.data.uploads)) {
        if (u.duration === undefined && u.width === undefined) continue;
        const info: MediaInfo = { hasVideo: u.kind === 'image' || u.poster !== undefined, hasAudio: u.kind !== 'image' };
        if (u.duration !== undefined) info.duration = u.duration;
        if (u.width !== undefined) info.width = u.width;
        if (u.height !== undefined) info.height = u.height;
        if (u.fps !== undefined) info.fps = u.fps;
        this.probed.set(`${u.kind}:${u.sha256}`, Promise.resolve({ info, poster: u.poster }));
      }
    }
    let probed = this.probed.get(key);
    if (!probed) {
      probed = (async (): Promise<Probed> => {
        const info = await probeMedia(this.tools.ffprobe, this.pathOf(file), signal);
        if (kind !== 'video' || !info.hasVideo) return { info, poster: undefined };
        // A still of the first frame: the agent animates a video's first frame like a portrait.
        const poster = `${id}-poster.jpg`;
        await runTool(this.tools.ffmpeg, ['-v', 'error', '-y', '-i', this.pathOf(file), '-frames:v', '1', '-q:v', '3', this.pathOf(poster)], { signal });
        return { info, poster };
      })();
      this.probed.set(key, probed);
      // A failed probe (or one aborted with its request) is not remembered: the next try runs anew.
      probed.catch(() => this.probed.delete(key));
    }
    return probed;
  }

  /**
   * The face in an image upload (or a video's poster), in the picture's own pixels; undefined
   * when none was found. Found once per content hash — in memory, and on disk so a restarted
   * server does not look again. A detector that cannot load is an error, never "no face".
   */
  async faceOf(upload: StoredUpload, signal?: AbortSignal): Promise<FaceLandmarks | undefined> {
    const still = upload.kind === 'image' ? upload.file : upload.poster;
    if (!still || !upload.width || !upload.height) return undefined;
    const size = { width: upload.width, height: upload.height };
    let face = this.faces.get(upload.sha256);
    if (!face) {
      const cacheFile = this.pathOf(`face-${upload.sha256}.json`);
      face = (async (): Promise<FaceLandmarks | null> => {
        try {
          const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as { v?: unknown; face?: FaceLandmarks | null };
          if (cached.v === FACE_CACHE_VERSION && cached.face !== undefined) return cached.face;
        } catch {
          // Not looked at yet (or an unreadable cache file): look now.
        }
        const small = detectionSize(size.width, size.height);
        const rgb = await decodeRgb(this.tools.ffmpeg, this.pathOf(still), small, signal);
        const pixels = `${size.width}x${size.height}:${createHash('sha256').update(rgb).digest('hex')}`;
        let byPixels = this.facesByPixels.get(pixels);
        if (!byPixels) {
          byPixels = findFaceInPixels(rgb, small, size).then((f) => f ?? null);
          this.facesByPixels.set(pixels, byPixels);
          byPixels.catch(() => this.facesByPixels.delete(pixels));
        }
        const found = await byPixels;
        await writeFileAtomic(cacheFile, JSON.stringify({ v: FACE_CACHE_VERSION, face: found }), { durable: false });
        return found;
      })();
      this.faces.set(upload.sha256, face);
      // A failed or aborted search is not remembered: the next one runs anew.
      face.catch(() => this.faces.delete(upload.sha256));
    }
    return (await face) ?? undefined;
  }

  /**
   * A URL upload of media this server serves: the same bytes under a new upload id (hard-linked,
   * or copied where links are refused), probed by content hash like any upload, so nothing is
   * decoded again.
   */
  async addFromStored(sessionId: string, source: StoredUpload, signal: AbortSignal): Promise<StoredUpload> {
    const id = newId();
    const file = `${id}.${source.ext}`;
    try {
      await link(this.pathOf(source.file), this.pathOf(file));
    } catch {
      await copyFile(this.pathOf(source.file), this.pathOf(file));
    }
    return this.register(id, file, sessionId, source.originalName, source.ext, source.size, source.sha256, signal, source.generated === true);
  }

  /** Stand-in for a URL upload: a placeholder of the URL's media kind (no network access). */
  async addFromUrl(sessionId: string, url: string, ext: string, signal: AbortSignal): Promise<StoredUpload> {
    const kind = mediaKindOf(ext) as MediaKind;
    const tmp = this.pathOf(`${newId()}-placeholder.${kind === 'image' ? 'png' : kind === 'audio' ? 'wav' : 'mp4'}`);
    const source =
      kind === 'image'
        ? ['-f', 'lavfi', '-i', 'color=c=0x808890:s=720x1280:d=0.04', '-frames:v', '1']
        : kind === 'audio'
          ? ['-f', 'lavfi', '-i', "aevalsrc='0.4*sin(2*PI*200*t)*(0.5+0.5*sin(2*PI*3*t))':s=22050:d=5"]
          : ['-f', 'lavfi', '-i', 'testsrc=s=640x360:r=25:d=5', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast'];
    await runTool(this.tools.ffmpeg, ['-v', 'error', '-y', ...source, tmp], { signal });
    const data = await readFile(tmp);
    await rm(tmp, { force: true });
    const name = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? `remote.${ext}`) || `remote.${ext}`;
    // The placeholder keeps its own container; record the name the client gave.
    const record = await this.add(sessionId, name, path.extname(tmp).slice(1), data, signal);
    record.originalName = sanitizeFileName(name);
    return record;
  }

  /** Synthesise a calm music bed (a soft chord with slow tremolo) for `seconds`. */
  async makeMusic(sessionId: string, seconds: number, signal: AbortSignal): Promise<StoredUpload> {
    const d = Math.max(1, Math.min(600, Math.ceil(seconds)));
    const tmp = this.pathOf(`${newId()}-music.wav`);
    const expr = "(0.18*sin(2*PI*220*t)+0.12*sin(2*PI*277.18*t)+0.1*sin(2*PI*329.63*t))*(0.75+0.25*sin(2*PI*0.5*t))";
    await runTool(this.tools.ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', `aevalsrc='${expr}':s=22050:d=${d}`, tmp], { signal });
    const data = await readFile(tmp);
    await rm(tmp, { force: true });
    const record = await this.add(sessionId, 'background-music.wav', 'wav', data, signal, true);
    record.role = 'music';
    return record;
  }
}
