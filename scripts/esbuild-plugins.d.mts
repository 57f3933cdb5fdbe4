// Types of esbuild-plugins.mjs, for the benchmarks that import it from TypeScript.
import type { Plugin } from 'esbuild';

export const lazyCommanderChildProcess: Plugin;
export const shippedPlugins: Plugin[];
