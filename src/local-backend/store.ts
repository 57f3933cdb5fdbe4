/**
 * The local backend's database: users, tokens, sessions, uploads and renders, kept in memory
 * and persisted to `<dataDir>/state.json` with atomic writes (temp file, fsync, rename), so a
 * restarted server keeps every session and can finish renders that were in flight.
 *
 * Tokens are stored only as SHA-256 hashes: the data dir of `backend: local` lives inside a
 * run's state dir, which must never hold a token. The plain token is kept in memory only, to
 * answer a repeated anonymous-token request with the same live token.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Draft } from '../contract/draft.js';
import type { RenderOutput } from '../contract/bodies.js';
import type { MediaKind } from '../contract/media.js';

/** An account: anonymous (from a client id) or not. Credits live here. */
export interface UserRecord {
  id: string;
  clientId: string | undefined;
  available: number;
  frozen: number;
  spent: number;
}

/** An issued API token, by hash. */
export interface TokenRecord {
  userId: string;
  clientId: string | undefined;
  expiresAt: number;
}

/** A stored media file. `file` is the name the server chose; `originalName` is metadata only. */
export interface UploadRecord {
  id: string;
  sessionId: string;
  file: string;
  originalName: string;
  ext: string;
  kind: MediaKind;
  size: number;
  sha256: string;
  duration?: number;
  width?: number;
  height?: number;
  fps?: number;
  /** A still taken from a video upload, so a video can be animated like a portrait. */
  poster?: string;
  /** Audio only: `music` when the name says so, else the voice-over. */
  role?: 'voice' | 'music';
  /** Set for files the agent made (music bed), not uploaded by the user. */
  generated?: boolean;
}

/** A project + agent session (CONTRACT §2.2). */
export interface SessionRecord {
  id: string;
  taskId: string;
  userId: string;
  taskName: string;
  language: string;
  uploads: string[];
  draft: Draft | undefined;
  canvas: { width: number; height: number; ratio: string } | undefined;
  generatedMedia: { type: string; url: string; duration?: number }[];
  createdAt: number;
}

/** Render job states; `cancelled` is the emulator's own (CONTRACT §4). */
export type RenderState = 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';

/** A render job. `file` is the finished MP4 in `renders/`. */
export interface RenderRecord {
  id: string;
  userId: string;
  sessionId: string;
  draft: Draft;
  output: Partial<RenderOutput>;
  status: RenderState;
  progress: number;
  createdAt: number;
  completedAt?: number;
  error?: string;
  file?: string;
  size?: number;
  duration?: number;
  /** Content hash of draft + media + output options: the render cache key. */
  cacheKey?: string;
  cacheHit?: boolean;
  /** Notes about degraded output (e.g. text skipped for lack of fonts). */
  notes?: string[];
}

interface Persisted {
  version: 1;
  users: Record<string, UserRecord>;
  tokens: Record<string, TokenRecord>;
  sessions: Record<string, SessionRecord>;
  uploads: Record<string, UploadRecord>;
  renders: Record<string, RenderRecord>;
}

/** Hash of a token, the only form in which tokens are stored. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** In-memory tables plus serialized atomic persistence. */
export class Store {
  data: Persisted = { version: 1, users: {}, tokens: {}, sessions: {}, uploads: {}, renders: {} };
  /** Plain live tokens by client id; memory only (see the file comment). */
  readonly liveTokens = new Map<string, string>();
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;
  private tmpCounter = 0;

  constructor(readonly dir: string) {}

  get uploadsDir(): string {
    return path.join(this.dir, 'uploads');
  }
  get rendersDir(): string {
    return path.join(this.dir, 'renders');
  }
  get workDir(): string {
    return path.join(this.dir, 'work');
  }
  private get file(): string {
    return path.join(this.dir, 'state.json');
  }

  /** Create folders and load an earlier state if there is one. */
  async open(): Promise<void> {
    await Promise.all([this.uploadsDir, this.rendersDir, this.workDir].map((d) => mkdir(d, { recursive: true })));
    let text: string | undefined;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (text !== undefined) {
      const loaded = JSON.parse(text) as Partial<Persisted>;
      this.data = {
        version: 1,
        users: loaded.users ?? {},
        tokens: loaded.tokens ?? {},
        sessions: loaded.sessions ?? {},
        uploads: loaded.uploads ?? {},
        renders: loaded.renders ?? {},
      };
    }
  }

  /**
   * Persist soon. Writes are serialized; a change made while a write runs triggers exactly one
   * more write, so the file always ends up holding the latest state.
   */
  save(): Promise<void> {
    if (this.dirty) return this.saving;
    this.dirty = true;
    this.saving = this.saving.then(async () => {
      this.dirty = false;
      await this.writeAtomic(JSON.stringify(this.data));
    });
    return this.saving;
  }

  /** Wait until every requested write is on disk. */
  async flush(): Promise<void> {
    await this.save();
  }

  private async writeAtomic(text: string): Promise<void> {
    const tmp = `${this.file}.${randomBytes(4).toString('hex')}.${++this.tmpCounter}.tmp`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.file);
  }
}
