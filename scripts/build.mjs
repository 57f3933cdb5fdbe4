// Build: generate the standalone schema validators, then bundle the CLI with esbuild.
// Why a bundle: start-up cost. Resolving hundreds of ESM files costs more than parsing one.
//
// Two passes. The first bundles src/main.ts as ES modules split at the commands' dynamic
// imports, so start-up parses the chunks the command in use needs, not the whole program
// (`talk validate` loads neither the runner, the backend client nor the local backend). The
// second turns each chunk into CommonJS, file for file: V8 can cache the compiled code of a
// script but, on Node 20, not of an ES module, and bin/talk.js loads these scripts with that
// cache (bench/notes/validate.md). Dynamic imports become requires of the same chunks, still
// evaluated only when a command runs.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { shippedPlugins } from './esbuild-plugins.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');

const generator = path.join(root, 'scripts', 'gen-validator.mjs');
if (existsSync(generator)) {
  await import(generator);
}

const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
const staging = await mkdtemp(path.join(tmpdir(), 'talk-build-'));
try {
  await build({
    entryPoints: [path.join(root, 'src', 'main.ts')],
    outdir: staging,
    entryNames: 'talk',
    splitting: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20.18',
    sourcemap: 'linked',
    // ffmpeg/ffprobe installers locate their binaries relative to their own package folder.
    external: ['@ffmpeg-installer/ffmpeg', '@ffprobe-installer/ffprobe'],
    define: { __TALK_VERSION__: JSON.stringify(pkg.version) },
    plugins: shippedPlugins,
    logLevel: 'warning',
  });
  // A fresh dist/: chunk names carry content hashes, and old chunks would pile up.
  await rm(dist, { recursive: true, force: true });
  await mkdir(dist, { recursive: true });
  const chunks = (await readdir(staging)).filter((f) => f.endsWith('.js'));
  await build({
    entryPoints: chunks.map((f) => path.join(staging, f)),
    outdir: dist,
    bundle: false,
    platform: 'node',
    format: 'cjs',
    target: 'node20.18',
    // Read through the first pass's maps, so these point at src/ and node_modules/.
    sourcemap: 'linked',
    supported: { 'dynamic-import': false },
    // The modules that find files beside themselves read import.meta.url; a chunk's own file
    // stands in for it (every chunk is in dist/, as every chunk of the first pass was).
    define: { 'import.meta.url': '__talkImportMeta.url' },
    banner: { js: "const __talkImportMeta = { get url() { return require('node:url').pathToFileURL(__filename).href; } };" },
    logLevel: 'warning',
  });
  // The build's identity, for the compile cache: chunk names are content hashes, talk.js is not.
  const hash = createHash('sha256');
  for (const f of chunks.sort()) hash.update(f).update(await readFile(path.join(dist, f)));
  await writeFile(path.join(dist, 'package.json'), `${JSON.stringify({ type: 'commonjs', talkBuild: hash.digest('hex').slice(0, 16) })}\n`);
} finally {
  await rm(staging, { recursive: true, force: true });
}
