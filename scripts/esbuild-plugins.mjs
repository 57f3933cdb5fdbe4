// esbuild plugins of the shipped bundle (scripts/build.mjs), also used by the benchmarks that
// bundle a client "as the CLI ships" (bench/lib/child.ts). Each patches one line of a
// dependency and fails the build if that line is not found, rather than ship without it.
import { readFile } from 'node:fs/promises';

/**
 * commander requires child_process at load, for executable subcommands talk does not have;
 * loading it costs every start about 2 ms. This hands commander a stand-in that requires it
 * on first use.
 */
export const lazyCommanderChildProcess = {
  name: 'lazy-commander-child-process',
  setup(build) {
    build.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const line = "const childProcess = require('node:child_process');";
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(line)) throw new Error(`${args.path}: expected "${line}" (scripts/esbuild-plugins.mjs patches it)`);
      return { contents: text.replace(line, "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"), loader: 'js' };
    });
  },
};

/**
 * undici parses HTTP with llhttp compiled to WebAssembly. After some megabytes of responses V8
 * tiers its one big parsing function up to TurboFan: a compile of about 100 ms of CPU on a
 * background thread whose 29 MB of zone memory stay in that thread's malloc arena, a third of
 * a 200 MB download's peak RSS (`--trace-wasm-compilation-times`, bench/notes/backend.md).
 * Compiled by V8's baseline compiler alone, llhttp never tiers up, and parsing (headers only;
 * a body is passed through) is no slower that one can measure. The flag is set only for that
 * one synchronous compile and restored at once, so everything else, talk's own code cache
 * included, sees V8's flags unchanged.
 */
export const baselineLlhttp = {
  name: 'baseline-llhttp',
  setup(build) {
    build.onLoad({ filter: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client-h1\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      const parts = text.split('new WebAssembly.Module(');
      if (parts.length !== 3) throw new Error(`${args.path}: expected llhttp's two "new WebAssembly.Module(" (scripts/esbuild-plugins.mjs patches them)`);
      const helper = `
// Added by talk's build (scripts/esbuild-plugins.mjs, baselineLlhttp).
function __talkBaselineWasmModule (bytes) {
  const { setFlagsFromString } = require('node:v8')
  setFlagsFromString('--liftoff-only')
  try {
    return new WebAssembly.Module(bytes)
  } finally {
    setFlagsFromString('--no-liftoff-only')
  }
}
`;
      return { contents: parts.join('__talkBaselineWasmModule(') + helper, loader: 'js' };
    });
  },
};

/** Every plugin the shipped bundle is built with. */
export const shippedPlugins = [lazyCommanderChildProcess, baselineLlhttp];
