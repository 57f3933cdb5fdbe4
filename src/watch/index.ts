/** The watch folder engine: what `commands/watch.ts` uses. */
export { DEFAULT_WATCH_CONFIG, resolveWatchConfig, type PairingMode, type WatchConfig, type WatchSettings } from './config.js';
export {
  watchFolder,
  watchStateDir,
  type BundleError,
  type BundleJob,
  type BundleResult,
  type RunBundle,
  type WatchEvent,
  type WatchFolderOptions,
  type WatchSummary,
  type WatcherState,
} from './folder-watcher.js';
export { publishWaitingCredits, type OnSuccess, type Sidecar } from './publisher.js';
export { previewFolder, type PreviewEntry, type PreviewOptions } from './preview.js';
