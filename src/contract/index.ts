export * from './routes.js';
export * from './codes.js';
export * from './media.js';
export * from './bodies.js';
export * from './draft.js';
export * from './pricing.js';
