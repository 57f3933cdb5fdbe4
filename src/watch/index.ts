/** The watch folder engine: what `commands/watch.ts` uses. */
export { DEFAULT_WATCH_CONFIG, resolveWatchConfig, type PairingMode, type WatchConfig, type WatchOverrides } from './config.js';
export { watchFolder, watchStateDir, type WatchFolderOptions, type WatchSummary } from './folder-watcher.js';
export type { BundleError, BundleJob, BundleResult, RunBundle } from './bundle-job.js';
export type { WatchEvent } from './watch-event.js';
export type { WatcherState } from './watcher-state.js';
export { publishWaitingCredits, type OnSuccess, type Sidecar } from './publisher.js';
export { previewFolder, type PreviewEntry, type PreviewOptions } from './preview.js';
