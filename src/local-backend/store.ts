/**
 * The local backend's database: users, tokens, sessions, uploads and renders, kept in memory
 * and persisted under `<dataDir>` as a snapshot plus a journal of changed records (see
 * `Store`), so a restarted server keeps every session and can finish renders that were in
 * flight, and a write costs the size of the change, not of the whole state.
 *
 * Tokens are stored only as SHA-256 hashes: the data dir of `backend: local` lives inside a
 * run's state dir, which must never hold a token. The plain token is kept in memory only, to
 * answer a repeated anonymous-token request with the same live token.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { parseJournal } from '../core/journal.js';
import type { Draft } from '../contract/draft.js';
import type { RenderOutput } from '../contract/bodies.js';
import type { MediaKind } from '../contract/media.js';
import { writeFileAtomic } from '../core/atomic-write.js';

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
export interface StoredUpload {
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
export interface StoredRender {
  id: string;
  userId: string;
  sessionId: string;
  draft: Draft;
  output: Partial<RenderOutput>;
  status: RenderState;
  progress: number;
  createdAt: number;
  completedAt?: number;
  /** Set by a `render:fail` fault: the job fails with this as its error once it starts. */
  injectedFailure?: string;
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
  uploads: Record<string, StoredUpload>;
  renders: Record<string, StoredRender>;
}

/** The tables of the store. */
export type StoreTable = Exclude<keyof Persisted, 'version'>;

/** Records a change touched, by table: one key or several. */
export type StoreChange = Partial<Record<StoreTable, string | readonly string[]>>;

const TABLES: readonly StoreTable[] = ['users', 'tokens', 'sessions', 'uploads', 'renders'];

/** The journal is folded into a new snapshot once it outgrows this many bytes and 4× the snapshot. */
const COMPACT_MIN_BYTES = 1024 * 1024;

/** One journal line: the whole current record at `k` of table `t` (`v: null` = removed). */
interface JournalLine {
  t: StoreTable;
  k: string;
  v: unknown;
}

/** Hash of a token, the only form in which tokens are stored. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * In-memory tables plus crash-safe persistence whose cost follows the change, not the state:
 *
 * - `state.json` is a snapshot with a generation number, replaced atomically (temp file,
 *   fsync, rename);
 * - `state.<generation>.journal` holds one JSON line per changed record (its whole current
 *   value) appended after that snapshot, with one fsync per group of concurrent changes;
 * - once the journal outgrows 4× the snapshot, a new snapshot of the next generation is written
 *   and the old journal deleted. A journal of another generation is never replayed, so a crash
 *   between the rename and the delete cannot roll records back; a torn last line (crash during
 *   an append) is ignored, because its change was never acknowledged.
 */
export class Store {
  data: Persisted = { version: 1, users: {}, tokens: {}, sessions: {}, uploads: {}, renders: {} };
  /** Plain live tokens by client id; memory only (see the file comment). */
  readonly liveTokens = new Map<string, string>();
  private saving: Promise<void> = Promise.resolve();
  private scheduled = false;
  private pendingFull = false;
  private readonly pending = new Map<StoreTable, Set<string>>();
  private generation = 0;
  private journal: FileHandle | undefined;
  private journalBytes = 0;
  private snapshotBytes = 0;
  /** Bytes written to state files since open (snapshots + journal), for benchmarks. */
  bytesWritten = 0;

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
  private journalFile(generation: number): string {
    return path.join(this.dir, `state.${generation}.journal`);
  }

  /** Create folders and load an earlier state (snapshot + its journal) if there is one. */
  async open(): Promise<void> {
    await Promise.all([this.uploadsDir, this.rendersDir, this.workDir].map((d) => mkdir(d, { recursive: true })));
    let text: string | undefined;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (text !== undefined) {
      const loaded = JSON.parse(text) as Partial<Persisted> & { generation?: number };
      this.generation = typeof loaded.generation === 'number' ? loaded.generation : 0;
      this.data = {
        version: 1,
        users: loaded.users ?? {},
        tokens: loaded.tokens ?? {},
        sessions: loaded.sessions ?? {},
        uploads: loaded.uploads ?? {},
        renders: loaded.renders ?? {},
      };
    }
    await this.replay(this.journalFile(this.generation));
    // Start from one fresh snapshot, so the journal only ever holds this run's changes.
    await this.compact();
  }

  private async replay(file: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    let entries: JournalLine[];
    try {
      // A torn last line is dropped; a damaged one before it is an error, never a shorter history.
      entries = parseJournal(text, file) as JournalLine[];
    } catch (error) {
      throw new Error(`the local backend's data cannot be read: ${(error as Error).message}; move ${path.dirname(file)} aside to start with empty data`, { cause: error });
    }
    for (const entry of entries) {
      if (!TABLES.includes(entry.t) || typeof entry.k !== 'string') continue;
      const table = this.data[entry.t] as Record<string, unknown>;
      if (entry.v === null) delete table[entry.k];
      else table[entry.k] = entry.v;
    }
  }

  /**
   * Persist soon and resolve once it is on disk. With `change`, only the named records are
   * appended to the journal; without, a full snapshot is written. Writes are serialized, and
   * every change requested while a write runs goes into the one next write (group commit).
   */
  save(change?: StoreChange): Promise<void> {
    if (change === undefined) this.pendingFull = true;
    else {
      for (const table of TABLES) {
        const keys = change[table];
        if (keys === undefined) continue;
        let set = this.pending.get(table);
        if (!set) this.pending.set(table, (set = new Set()));
        for (const key of typeof keys === 'string' ? [keys] : keys) set.add(key);
      }
    }
    if (this.scheduled) return this.saving;
    this.scheduled = true;
    this.saving = this.saving.then(async () => {
      this.scheduled = false;
      await this.writeChanges();
    });
    return this.saving;
  }

  /** Wait until every requested write is on disk, and fold the journal into a snapshot. */
  async flush(): Promise<void> {
    await this.save();
    await this.journal?.close();
    this.journal = undefined;
  }

  private async writeChanges(): Promise<void> {
    const full = this.pendingFull;
    this.pendingFull = false;
    const lines: string[] = [];
    for (const [table, keys] of this.pending) {
      for (const key of keys) lines.push(JSON.stringify({ t: table, k: key, v: this.data[table][key] ?? null } satisfies JournalLine));
    }
    this.pending.clear();
    if (full || !this.journal || this.journalBytes > Math.max(COMPACT_MIN_BYTES, 4 * this.snapshotBytes)) {
      await this.compact();
      return;
    }
    if (lines.length === 0) return;
    const text = lines.join('\n') + '\n';
    await this.journal.appendFile(text, 'utf8');
    await this.journal.sync();
    const bytes = Buffer.byteLength(text);
    this.journalBytes += bytes;
    this.bytesWritten += bytes;
  }

  /** Write the whole state as the next generation's snapshot and start its empty journal. */
  private async compact(): Promise<void> {
    const previous = this.generation;
    const next = previous + 1;
    const text = JSON.stringify({ ...this.data, generation: next });
    await writeFileAtomic(this.file, text);
    this.generation = next;
    this.snapshotBytes = Buffer.byteLength(text);
    this.bytesWritten += this.snapshotBytes;
    await this.journal?.close();
    this.journal = await open(this.journalFile(next), 'a');
    this.journalBytes = 0;
    await rm(this.journalFile(previous), { force: true });
  }
}
