#!/usr/bin/env node
// Thin launcher: the CLI itself is the esbuild bundle in dist/ (built by `npm run build`,
// which `npm ci` runs through the `prepare` script): CommonJS chunks, loaded here with V8's
// code cache so that a command does not compile the same code at every start
// (bench/notes/validate.md).
//
// - Node ≥ 22.1 has a compile cache of its own: it is switched on and the bundle required.
// - Node 20 has none for modules, but compiles a script with cached data: each chunk is read,
//   compiled with the data kept from an earlier run of the same command (`vm.Script`
//   `cachedData`), and run with a CommonJS wrapper of its own. Chunks compiled without usable
//   data get theirs written at exit, after the command ran, so the data holds every function
//   the command compiled and the next start compiles almost nothing.
//
// The cache is per user (`$XDG_CACHE_HOME/talk/compile`, else `~/.cache/talk/compile`; or
// NODE_COMPILE_CACHE), one folder per build, node version and command. Without a home, or
// on any error reading or writing it, chunks are simply compiled: the cache changes no
// behaviour, only start-up time.
//
// This file is CommonJS (bin/package.json): an ES module entry would start Node's module
// loader first, and importing node:fs as a module reads every export, loading fs's stream
// classes too.
'use strict';
const { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const nodeModule = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const dist = path.join(__dirname, '..', 'dist');
const entry = path.join(dist, 'talk.js');
if (!existsSync(entry)) {
  process.stderr.write('talk: the CLI is not built yet. Run `npm run build` in the talk folder first.\n');
  process.exit(2);
}

// V8 flags for the commands that run for long: src/main.ts sets them too (for `node dist/talk.js`)
// and says why; this is its v8FlagsFor. They are set here first, before anything is compiled:
// V8 accepts cached code only under the flags it was made with.
const command = process.argv[2];
if (command !== undefined && !['validate', 'plan', 'schema', 'init', 'help', '--help', '-h', '--version', '-V'].includes(command)) {
  require('node:v8').setFlagsFromString(command === 'serve' ? '--heap-growing-percent=50' : '--heap-growing-percent=50 --liftoff-only');
}

const env = process.env;
const cacheRoot =
  env.NODE_COMPILE_CACHE ||
  (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? path.join(env.XDG_CACHE_HOME, 'talk', 'compile') : undefined) ||
  (env.HOME && path.isAbsolute(env.HOME) ? path.join(env.HOME, '.cache', 'talk', 'compile') : undefined);

if (typeof nodeModule.enableCompileCache === 'function') {
  if (cacheRoot !== undefined) nodeModule.enableCompileCache(cacheRoot);
  require(entry);
} else {
  loadWithCodeCache();
}

function loadWithCodeCache() {
  let folder;
  if (cacheRoot !== undefined) {
    try {
      const build = JSON.parse(readFileSync(path.join(dist, 'package.json'), 'utf8')).talkBuild;
      const name = /^[a-z][a-z-]{0,30}$/.test(command ?? '') ? command : '_';
      if (typeof build === 'string') folder = path.join(cacheRoot, `${build}-v8-${process.versions.v8}-${process.arch}`, name);
    } catch {
      // no build id: no cache
    }
  }
  const nodeRequire = nodeModule.createRequire(entry);
  /** Loaded chunks by file, each its `module` object (set before it runs, as Node does, for cycles). */
  const loaded = new Map();
  /** Scripts compiled without usable cached data: their data is written at exit. */
  const unsaved = [];

  const load = (file) => {
    const known = loaded.get(file);
    if (known !== undefined) return known.exports;
    const module = { exports: {}, filename: file, id: file, loaded: false };
    loaded.set(file, module);
    const cacheFile = folder === undefined ? undefined : path.join(folder, `${path.basename(file)}.cache`);
    let cachedData;
    if (cacheFile !== undefined) {
      try {
        cachedData = readFileSync(cacheFile);
      } catch {
        // first run of this command with this build
      }
    }
    // CommonJS's own wrapper; the newline ends a last line that is a comment (the source map's).
    const wrapped = `(function (exports, require, module, __filename, __dirname) { ${readFileSync(file, 'utf8')}\n});`;
    const script = new vm.Script(wrapped, { filename: file, cachedData });
    if (cacheFile !== undefined && (cachedData === undefined || script.cachedDataRejected === true)) unsaved.push({ script, cacheFile });
    // Chunks name each other "./chunk-….js" (all in dist/); anything else is Node's to resolve.
    const require = (specifier) => (specifier.startsWith('./') ? load(path.join(dist, specifier)) : nodeRequire(specifier));
    require.resolve = nodeRequire.resolve;
    script.runInThisContext().call(module.exports, module.exports, require, module, file, dist);
    module.loaded = true;
    return module.exports;
  };

  process.once('exit', () => {
    if (unsaved.length === 0 || folder === undefined) return;
    try {
      const parent = path.dirname(folder);
      const fresh = !existsSync(parent);
      mkdirSync(folder, { recursive: true, mode: 0o700 });
      // A new build's first run clears the folders of builds before it.
      if (fresh) {
        for (const old of readdirSync(path.dirname(parent))) if (old !== path.basename(parent)) rmSync(path.join(path.dirname(parent), old), { recursive: true, force: true });
      }
      for (const { script, cacheFile } of unsaved) {
        const temp = `${cacheFile}.${process.pid}.tmp`;
        writeFileSync(temp, script.createCachedData(), { mode: 0o600 });
        renameSync(temp, cacheFile);
      }
    } catch {
      // A cache that cannot be written costs the next start a compile, nothing more.
    }
  });

  load(entry);
}
