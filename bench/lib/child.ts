// Helpers for benchmarks that measure a client in its own process: bundle a child script the
// way the CLI ships (one ESM file run by plain node, so tsx's loader is not in its memory), and
// run curl under /usr/bin/time for its time and peak RSS.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { shippedPlugins } from '../../scripts/esbuild-plugins.mjs';

/** `execFile` as a promise: async, so a server on the caller's event loop keeps serving. */
export const run = promisify(execFile);

/**
 * `bench/<name>.ts` bundled into `dir` as the CLI is (CommonJS deps given a require, the
 * shipped bundle's patches of its dependencies applied).
 */
export async function bundleChild(name: string, dir: string): Promise<string> {
  const outfile = path.join(dir, `${name}.mjs`);
  await build({
    entryPoints: [path.join(path.dirname(fileURLToPath(import.meta.url)), '..', `${name}.ts`)],
    outfile,
    bundle: true,
    plugins: shippedPlugins,
    platform: 'node',
    format: 'esm',
    target: 'node20.18',
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  });
  return outfile;
}

/** curl with `args`: its own transfer time (`%{time_total}`) and peak RSS. */
export async function curl(args: string[]): Promise<{ ms: number; maxRssMB: number }> {
  const result = await run('/usr/bin/time', ['-f', '%M', 'curl', '-s', '-S', '-w', '%{time_total}', ...args], { encoding: 'utf8' });
  const seconds = Number(/([\d.]+)\s*$/.exec(result.stdout)?.[1]);
  const kb = Number(/(\d+)\s*$/.exec(result.stderr.trim())?.[1]);
  return { ms: seconds * 1000, maxRssMB: kb / 1024 };
}
