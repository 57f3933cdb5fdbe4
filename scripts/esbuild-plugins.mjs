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

/** Every plugin the shipped bundle is built with. */
export const shippedPlugins = [lazyCommanderChildProcess];
