/**
 * The settings of a watch folder: the workflow's `watch:` key with every default filled in.
 * Durations are milliseconds here; the workflow layer parses `2s`, `10m`, … before this.
 */

import { DEFAULT_WATCH, type WatchSettings } from '../workflow/index.js';

/** How files are grouped into one job (see `WatchSettings.pairing` in the workflow layer). */
export type PairingMode = WatchSettings['pairing'];

/** A watch folder's settings, complete: the workflow's parsed `watch:` key. */
export type WatchConfig = WatchSettings;

/** Some of a watch folder's settings (tests and callers fill in what they need), over the defaults. */
export type WatchOverrides = Partial<WatchConfig>;

/** The workflow layer's defaults, with mutable copies of the role lists. */
export const DEFAULT_WATCH_CONFIG: Readonly<WatchConfig> = Object.freeze({
  ...DEFAULT_WATCH,
  roles: Object.fromEntries(Object.entries(DEFAULT_WATCH.roles).map(([role, exts]) => [role, [...exts]])),
});

/** Extensions of a bundle's own instructions file (`<stem>.txt` or `<stem>.yaml`). */
export const INSTRUCTION_EXTENSIONS: readonly string[] = ['txt', 'yaml', 'yml'];

/** Fill in defaults; extensions are normalised to lower case without a dot. */
export function resolveWatchConfig(settings: WatchOverrides | undefined): WatchConfig {
  const merged: WatchConfig = { ...DEFAULT_WATCH_CONFIG, ...(settings ?? {}) };
  const roles: Record<string, string[]> = {};
  for (const [role, exts] of Object.entries(merged.roles)) {
    roles[role] = exts.map((e) => e.replace(/^\./, '').toLowerCase());
  }
  return { ...merged, roles };
}
