/**
 * Knobs of the local backend that SPEC §5's flags do not name, read from the environment so the
 * public flag set stays as specified. One reader for `talk serve` and the in-process backend of
 * `backend: local`:
 * - TALK_LOCAL_LATENCY (`ROUTE=MS[,ROUTE=MS…]`), TALK_LOCAL_FAULTS (rules separated by spaces),
 *   TALK_LOCAL_SEED — the same as `--latency`, `--fault` and `--seed`;
 * - TALK_LOCAL_TURN_DELAY_MS (how long a generation "works"; edits take a third of it),
 *   TALK_LOCAL_HEARTBEAT_MS, TALK_LOCAL_TOKEN_TTL_MS, TALK_LOCAL_SILENT_EDIT_RATIO;
 * - TALK_LOCAL_ANONYMOUS_CREDITS (a new anonymous account's credits, default 100 as the
 *   contract grants; raise it to preview batches offline), TALK_LOCAL_IP_QUOTA (new anonymous
 *   tokens per IP address per 7 days; off unless set).
 */
import { UsageError } from '../core/errors.js';
import { parseFaultRule, parseLatency, type LocalBackendOptions } from '../local-backend/index.js';

type Env = Readonly<Record<string, string | undefined>>;

function numberFromEnv(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

/** Local backend options from the TALK_LOCAL_* variables (only those that are set). */
export function localKnobsFromEnv(env: Env): LocalBackendOptions {
  const options: LocalBackendOptions = { env };
  const latency = env['TALK_LOCAL_LATENCY'];
  if (latency) options.latency = parseLatency(latency);
  const faults = env['TALK_LOCAL_FAULTS'];
  if (faults) options.faults = faults.split(/\s+/).filter(Boolean).map(parseFaultRule);
  const seed = numberFromEnv(env, 'TALK_LOCAL_SEED');
  if (seed !== undefined) options.seed = seed;
  const turnDelay = numberFromEnv(env, 'TALK_LOCAL_TURN_DELAY_MS');
  if (turnDelay !== undefined) options.turnDelayMs = { generation: turnDelay, edit: Math.round(turnDelay / 3) };
  const heartbeat = numberFromEnv(env, 'TALK_LOCAL_HEARTBEAT_MS');
  if (heartbeat !== undefined) options.heartbeatMs = heartbeat;
  const tokenTtl = numberFromEnv(env, 'TALK_LOCAL_TOKEN_TTL_MS');
  if (tokenTtl !== undefined) options.tokenTtlMs = tokenTtl;
  const silent = numberFromEnv(env, 'TALK_LOCAL_SILENT_EDIT_RATIO');
  if (silent !== undefined) options.silentEditRatio = silent;
  const credits = numberFromEnv(env, 'TALK_LOCAL_ANONYMOUS_CREDITS');
  if (credits !== undefined) options.anonymousCredits = credits;
  const ipQuota = numberFromEnv(env, 'TALK_LOCAL_IP_QUOTA');
  if (ipQuota !== undefined) options.ipQuota = ipQuota;
  return options;
}
