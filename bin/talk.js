#!/usr/bin/env node
// Thin launcher: the CLI itself is the esbuild bundle in dist/ (built by `npm run build`,
// which `npm ci` runs through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundle = new URL('../dist/talk.js', import.meta.url);
if (!existsSync(fileURLToPath(bundle))) {
  process.stderr.write('talk: the CLI is not built yet. Run `npm run build` in the talk folder first.\n');
  process.exit(2);
}
await import(bundle.href);
