// Build: generate the standalone schema validator, then bundle the CLI with esbuild.
// Why a bundle: start-up cost. Resolving hundreds of ESM files costs more than parsing one.
import { build } from 'esbuild';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const generator = path.join(root, 'scripts', 'gen-validator.mjs');
if (existsSync(generator)) {
  await import(generator);
}

const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
await mkdir(path.join(root, 'dist'), { recursive: true });
await build({
  entryPoints: [path.join(root, 'src', 'main.ts')],
  // Split at the commands' dynamic imports: start-up parses the chunks the command in use
  // needs, not the whole program (talk validate stays near bare `node` start-up).
  outdir: path.join(root, 'dist'),
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
  // CommonJS dependencies inside an ESM bundle still call require(); give them one.
  banner: {
    js: "import { createRequire as __talkCreateRequire } from 'node:module'; const require = __talkCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
await writeFile(path.join(root, 'dist', 'package.json'), '{"type":"module"}\n');
