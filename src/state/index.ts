/** Run state on disk: atomic journal + snapshot, the run lock, and where it all lives. */
export * from './types.js';
export * from './lock.js';
export * from './state-store.js';
export * from './locate.js';
