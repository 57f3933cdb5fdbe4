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

function numberFromEnv(env: CommandContext['env'], name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

/**
 * `talk serve`: the local backend as a standalone server. Prints `listening on URL` as its
 * first stdout line, logs requests to stderr (never tokens: paths and statuses only), and on
 * SIGINT/SIGTERM stops within a second after persisting its state, returning 0.
 *
 * Knobs beyond SPEC §5's flags come from the environment so the public flag set stays as
 * specified: TALK_LOCAL_HEARTBEAT_MS, TALK_LOCAL_TOKEN_TTL_MS, TALK_LOCAL_SILENT_EDIT_RATIO,
 * TALK_LOCAL_TURN_DELAY_MS (generation; edits take a third of it), TALK_LOCAL_ANONYMOUS_CREDITS
 * (a new anonymous account's credits, for batch tests beyond one generation).
 */
export async function serveCommand(_args: string[], options: ServeOptions, ctx: CommandContext): Promise<number> {
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new UsageError('--seed takes a whole number');
  const latency: LatencyMap = {};
  for (const spec of options.latency) Object.assign(latency, parseLatency(spec));
  const compat: Partial<CompatOptions> = {};
  for (const spec of options.compat) Object.assign(compat, parseCompat(spec));
  const faults = options.fault.map(parseFaultRule);
  const turnDelay = numberFromEnv(ctx.env, 'TALK_LOCAL_TURN_DELAY_MS');
  const heartbeatMs = numberFromEnv(ctx.env, 'TALK_LOCAL_HEARTBEAT_MS');
  const tokenTtlMs = numberFromEnv(ctx.env, 'TALK_LOCAL_TOKEN_TTL_MS');
  const silentEditRatio = numberFromEnv(ctx.env, 'TALK_LOCAL_SILENT_EDIT_RATIO');
  const anonymousCredits = numberFromEnv(ctx.env, 'TALK_LOCAL_ANONYMOUS_CREDITS');

  const backendOptions: LocalBackendOptions = {
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
  if (heartbeatMs !== undefined) backendOptions.heartbeatMs = heartbeatMs;
  if (tokenTtlMs !== undefined) backendOptions.tokenTtlMs = tokenTtlMs;
  if (silentEditRatio !== undefined) backendOptions.silentEditRatio = silentEditRatio;
  if (anonymousCredits !== undefined) backendOptions.anonymousCredits = anonymousCredits;
  if (turnDelay !== undefined) backendOptions.turnDelayMs = { generation: turnDelay, edit: Math.round(turnDelay / 3) };

  const backend = await startLocalBackend(backendOptions);
  ctx.stdout.write(`listening on ${backend.url}\n`);
  if (!ctx.signal.aborted) {
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  await backend.close();
  if (!options.quiet) ctx.stderr.write('local backend stopped; state saved\n');
  return 0;
}
