import path from 'node:path';
import { UsageError } from '../core/errors.js';
import {
  parseCompat,
  parseFaultRule,
  parseLatency,
  startLocalBackend,
  type CompatOptions,
  type LatencyMap,
  type LocalBackendOptions,
} from '../local-backend/index.js';
import type { CommandContext, SharedOptions } from './context.js';
import { localKnobsFromEnv } from './local-knobs.js';

export interface ServeOptions extends SharedOptions {
  host: string;
  port: number;
  dataDir: string | undefined;
  /** `ROUTE=MS`, repeatable. */
  latency: string[];
  /** `ROUTE:FAULT[:xN|:P%]`, repeatable. */
  fault: string[];
  seed: number | undefined;
  /** Contract variants, `NAME=VALUE`, repeatable (see `talk serve --help`). */
  compat: string[];
}

/**
 * `talk serve`: the local backend as a standalone server. Prints `listening on URL` as its
 * first stdout line, logs requests to stderr (never tokens: paths and statuses only), and on
 * SIGINT/SIGTERM stops within a second after persisting its state, returning 0.
 *
 * Knobs beyond SPEC §5's flags come from the TALK_LOCAL_* variables (see local-knobs.ts);
 * `--latency`, `--fault` and `--seed` add to or override theirs.
 */
export async function serveCommand(_args: string[], options: ServeOptions, ctx: CommandContext): Promise<number> {
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new UsageError('--seed takes a whole number');
  const knobs = localKnobsFromEnv(ctx.env);
  const latency: LatencyMap = { ...knobs.latency };
  for (const spec of options.latency) Object.assign(latency, parseLatency(spec));
  const compat: Partial<CompatOptions> = {};
  for (const spec of options.compat) Object.assign(compat, parseCompat(spec));
  const faults = [...(knobs.faults ?? []), ...options.fault.map(parseFaultRule)];

  const backendOptions: LocalBackendOptions = {
    ...knobs,
    host: options.host,
    port: options.port,
    latency,
    faults,
    compat,
    env: ctx.env,
    logger: options.quiet ? undefined : (line) => ctx.stderr.write(`${line}\n`),
  };
  if (options.dataDir !== undefined) backendOptions.dataDir = path.resolve(ctx.cwd, options.dataDir);
  if (options.seed !== undefined) backendOptions.seed = options.seed;

  const backend = await startLocalBackend(backendOptions);
  ctx.stdout.write(`listening on ${backend.url}\n`);
  if (!ctx.signal.aborted) {
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  await backend.close();
  if (!options.quiet) ctx.stderr.write('local backend stopped; state saved\n');
  return 0;
}
