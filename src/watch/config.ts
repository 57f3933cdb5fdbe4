/**
 * The settings of a watch folder: the workflow's `watch:` key with every default filled in.
 * Durations are milliseconds here; the workflow layer parses `2s`, `10m`, … before this.
 */

/** How files are grouped into one job. */
export type PairingMode =
  /** `anna.jpg` + `anna.mp3` (+ optional `anna.txt` / `anna.yaml`) at the top of the folder. */
  | 'stem'
  /** One subfolder per job; its files are matched to roles by extension. */
  | 'folder'
  /** One subfolder per job, complete once its manifest file (written last) has settled. */
  | 'manifest';

/** A watch folder's settings, complete. */
export interface WatchConfig {
  pairing: PairingMode;
  /** Item key (e.g. `portrait`, `voice`) → accepted extensions, lower case, without dot. */
  roles: Record<string, string[]>;
  /** The manifest's file name, for `pairing: manifest`. */
  manifest: string;
  /** A file is ready when its size and mtime have not changed for this long. */
  settleMs: number;
  /** An incomplete bundle older than this gets a status file saying what is missing. */
  bundleTimeoutMs: number;
  /** Full reconciliation scan interval; events can be lost (network shares, overflow). */
  scanIntervalMs: number;
  /** Attempts per bundle content; after that it runs again only when its content changes. */
  maxAttempts: number;
  /** Relative to the watched folder (or absolute). Never watched as input. */
  outputDir: string;
  processedDir: string;
  failedDir: string;
}

/** The `watch:` key as the workflow layer exposes it: every field optional. */
export type WatchSettings = Partial<WatchConfig>;

/** Defaults fixed by the issue; users' folders depend on them. */
export const DEFAULT_WATCH_CONFIG: Readonly<WatchConfig> = Object.freeze({
  pairing: 'stem',
  roles: { portrait: ['jpg', 'jpeg', 'png', 'webp'], voice: ['mp3', 'wav', 'm4a', 'aac'] },
  manifest: 'job.yaml',
  settleMs: 2000,
  bundleTimeoutMs: 10 * 60_000,
  scanIntervalMs: 30_000,
  maxAttempts: 3,
  outputDir: 'out',
  processedDir: 'processed',
  failedDir: 'failed',
});

/** Extensions of a bundle's own instructions file (`<stem>.txt` or `<stem>.yaml`). */
export const INSTRUCTION_EXTENSIONS: readonly string[] = ['txt', 'yaml', 'yml'];

/** Fill in defaults; extensions are normalised to lower case without a dot. */
export function resolveWatchConfig(settings: WatchSettings | undefined): WatchConfig {
  const merged: WatchConfig = { ...DEFAULT_WATCH_CONFIG, ...(settings ?? {}) };
  const roles: Record<string, string[]> = {};
  for (const [role, exts] of Object.entries(merged.roles)) {
    roles[role] = exts.map((e) => e.replace(/^\./, '').toLowerCase());
  }
  return { ...merged, roles };
}
