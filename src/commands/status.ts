import path from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { ExitCode, UsageError } from '../core/errors.js';
import { asSessionId } from '../core/ids.js';
import { TrackType, type Draft } from '../contract/draft.js';
import { listRunDirs, readRunState, stateDirFor, type RunState } from '../state/index.js';
import { currentLockEnvironment, type LockOwner } from '../state/lock.js';
import { displayPath } from '../core/paths.js';
import { connectBackend, type Connection } from './connect.js';
import { queueAddressFrom } from './queue-knobs.js';
import { connectRedis, KEY_PREFIX, reachRedis, type QueueAddress } from '../queue/connection.js';
import { readRedisRunJobs, runStateKeys } from '../queue/redis-state-store.js';
import { STATE_FORMAT_VERSION, type JobState, type JobStatus } from '../state/types.js';
import { STATUS_LISTED_JOBS, type CommandContext, type SharedOptions } from './context.js';
import { commandLine, resumeCommand } from './resume-command.js';

export interface StatusOptions extends SharedOptions {
  json: boolean;
  /** `--merge dir…`: report the runs of several state dirs as one (the shards of a CI matrix). */
  merge?: string[] | undefined;
  /** `--queue redis://…` (or `TALK_QUEUE`): the runs whose state the queue's workers keep in Redis. */
  queue?: string | undefined;
  /** `--all`: list every job of a big run too. */
  all?: boolean;
}

/** The order job counts are said in: what needs a look first. */
const STATUS_ORDER: readonly JobStatus[] = ['failed', 'not-started', 'running', 'pending', 'done'];

/** `12 done, 1 failed, 3 running`, the unfinished first. */
function jobCounts(jobs: readonly JobState[]): string {
  const counts = new Map<JobStatus, number>();
  for (const job of jobs) counts.set(job.status, (counts.get(job.status) ?? 0) + 1);
  return STATUS_ORDER.filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${s}`).join(', ');
}

/**
 * The jobs `talk status` lists of a run: all of a small run (or with `--all`); of a big one,
 * those not done, at most STATUS_LISTED_JOBS of them (a 10,000-job batch is a count, and the
 * jobs that need a look).
 */
function listedJobs<J extends { status: string }>(entries: [string, J][], all: boolean): [string, J][] {
  if (all || entries.length <= STATUS_LISTED_JOBS) return entries;
  return entries.filter(([, job]) => job.status !== 'done').slice(0, STATUS_LISTED_JOBS);
}

/** The line under a listing that left jobs out: how many, which kind, and the command that lists every one. */
function unlistedLine(jobs: readonly { status: string }[], listed: number, every: string): string | undefined {
  const unlisted = jobs.length - listed;
  if (unlisted <= 0) return undefined;
  const notDone = jobs.filter((j) => j.status !== 'done').length - listed;
  return `  ${unlisted} ${unlisted === 1 ? 'job' : 'jobs'} not listed (${notDone > 0 ? `${notDone} not done, ` : ''}${unlisted - notDone} done); every one: ${every}`;
}

const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(1))}s`;

/**
 * A draft in the seed's summary form:
 * `Timeline (3 tracks): 1. Video: clip (0-10s) 2. BGM: Lo-fi (0-10s, 35%) 3. Title: "Hi" (0-3s)`.
 */
export function formatTimeline(draft: unknown): string {
  const tracks = (draft as Draft | null | undefined)?.t;
  if (!Array.isArray(tracks) || tracks.length === 0) return 'Timeline: empty (nothing generated yet)';
  const parts = tracks.map((track, i) => {
    const segments = Array.isArray(track.sg) ? track.sg : [];
    const start = Math.min(...segments.map((s) => s.st ?? 0), 0);
    const end = Math.max(...segments.map((s) => (s.st ?? 0) + (s.d ?? 0)), 0);
    const first = segments[0];
    const span = `${seconds(start).replace(/s$/, '')}-${seconds(end)}`;
    switch (track.tt) {
      case TrackType.video:
        return `${i + 1}. Video: ${first?.name ?? 'clip'} (${span})`;
      case TrackType.audio: {
        const kind = first?.role === 'voice' ? 'Voice' : 'BGM';
        const vol = typeof first?.vol === 'number' ? `, ${Math.round(first.vol * 100)}%` : '';
        return `${i + 1}. ${kind}: ${first?.name ?? 'audio'} (${span}${vol})`;
      }
      case TrackType.text:
        return `${i + 1}. Title: "${first?.text ?? ''}" (${span})`;
      default:
        return `${i + 1}. Track ${track.tt}: ${segments.length} segments (${span})`;
    }
  });
  return `Timeline (${tracks.length} ${tracks.length === 1 ? 'track' : 'tracks'}): ${parts.join(' ')}`;
}

/** The lock owner, when a live runner holds this run dir. */
async function liveOwner(runDir: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(path.join(runDir, 'lock'), 'utf8')) as LockOwner;
    const env = currentLockEnvironment();
    return owner.host !== env.host || env.isAlive(owner.pid) ? owner : undefined;
  } catch {
    return undefined;
  }
}

interface RunReport {
  runDir: string;
  state: RunState;
  runningNow: LockOwner | undefined;
  timelines: Record<string, string>;
}

/**
 * `talk status [workflow]`: what the state dir knows — per run its status and credits, per job
 * its session, per step its status, attempts, render ids and outputs — and, when the backend
 * answers, each session's timeline. An in-process local backend is started only when no runner
 * holds the state (two servers must not share one data dir).
 */
export async function statusCommand(args: string[], options: StatusOptions, ctx: CommandContext): Promise<number> {
  const file = args[0];
  if (options.merge !== undefined) return mergedStatus(options.merge, file, options, ctx);
  const address = queueAddressFrom(options.queue, ctx.env);
  // A workflow that is not there has no runs: say so, rather than "no runs recorded".
  if (file !== undefined && (await stat(path.resolve(ctx.cwd, file)).catch(() => undefined)) === undefined) {
    throw new UsageError(`${file} does not exist`, { hint: 'name an existing workflow file, or run `talk status` to list every run in ./.talk' });
  }
  const stateDir = file ? stateDirFor(path.resolve(ctx.cwd, file), options.stateDir, ctx.cwd) : path.resolve(ctx.cwd, options.stateDir ?? '.talk');
  const reports: RunReport[] = [];
  if (address) {
    for (const run of await readQueueRuns(address, file === undefined ? undefined : path.resolve(ctx.cwd, file))) reports.push({ ...run, runningNow: undefined, timelines: {} });
  } else {
    const runDirs = await listRunDirs(stateDir, { signal: ctx.signal, ...(file ? { workflowPath: path.resolve(ctx.cwd, file) } : {}) });
    for (const runDir of runDirs) {
      const loaded = await readRunState(runDir, { signal: ctx.signal });
      if (loaded) reports.push({ runDir, state: loaded.state, runningNow: await liveOwner(runDir), timelines: {} });
    }
  }
  if (reports.length === 0) {
    const where = address ? address.shown : displayPath(stateDir, ctx.cwd);
    if (options.json) ctx.stdout.write(`${JSON.stringify({ runs: [] })}\n`);
    else {
      ctx.stdout.write(`no runs recorded in ${where}${file ? ` for ${file}` : ''}\n`);
      // Run state lives beside each workflow: a bare `talk status` sees only this folder's.
      if (!file) ctx.stdout.write(`run state lives in .talk/ beside each workflow (or --state-dir); name one (\`talk status flows/hello.yaml\`) or pass --state-dir to look there\n`);
    }
    return ExitCode.ok;
  }

  const all = options.all === true || options.json;
  for (const report of reports) await addTimelines(report, listedJobs(Object.entries(report.state.jobs), all), stateDir, ctx);

  if (options.json) {
    ctx.stdout.write(`${JSON.stringify({ runs: reports.map((r) => ({ ...r.state, runDir: r.runDir, runningNow: r.runningNow ?? null, timelines: r.timelines })) })}\n`);
    return ExitCode.ok;
  }
  const lines: string[] = [];
  for (const { state, runningNow, timelines } of reports) {
    const status = runningNow ? `running now (pid ${runningNow.pid})` : (state.status ?? 'unknown');
    lines.push(`${state.name} (${displayPath(state.workflowPath, ctx.cwd)}): ${status} · ${state.creditsUsed} credits used · updated ${state.updatedAt}`);
    if (state.backend ?? state.backendUrl) lines.push(`  backend ${state.backend === 'local' ? 'local (in-process)' : (state.backendUrl ?? state.backend ?? '')}`);
    const jobs = Object.values(state.jobs);
    if (jobs.length > 1) lines.push(`  ${jobs.length} jobs: ${jobCounts(jobs)}`);
    const listed = listedJobs(Object.entries(state.jobs), all);
    for (const [jobId, job] of listed) {
      lines.push(`  job ${jobId}: ${job.status}${job.sessionId ? ` · session ${job.sessionId}` : ''}`);
      for (const [stepId, step] of Object.entries(job.steps)) {
        const bits = [`${step.kind}`, step.status, `${step.attempts} ${step.attempts === 1 ? 'attempt' : 'attempts'}`];
        if (step.renderIds?.length) bits.push(`render ${step.renderIds.join(', ')}`);
        if (step.output) bits.push(`→ ${displayPath(step.output.path, ctx.cwd)} (${step.output.bytes} bytes, sha256 ${step.output.sha256.slice(0, 12)}…)`);
        if (step.error) bits.push(`error: ${step.error.message}`);
        lines.push(`    ${stepId}: ${bits.join(' · ')}`);
      }
      const timeline = timelines[jobId];
      if (timeline) lines.push(`    ${timeline}`);
    }
    const every = resumeCommand(['status', displayPath(state.workflowPath, ctx.cwd), ...(address && options.queue !== undefined ? ['--queue', address.shown] : []), '--all'], { backend: undefined, stateDir: options.stateDir, vars: {} }, ctx.program);
    const left = unlistedLine(jobs, listed.length, every);
    if (left !== undefined) lines.push(left);
  }
  ctx.stdout.write(`${lines.join('\n')}\n`);
  return ExitCode.ok;
}

/** Ask the backend for each session's timeline; silently leave them out when it does not answer. */
async function addTimelines(report: RunReport, jobs: readonly [string, JobState][], stateDir: string, ctx: CommandContext): Promise<void> {
  const sessions = jobs.filter(([, job]) => job.sessionId !== undefined);
  const backend = report.state.backend ?? report.state.backendUrl;
  if (sessions.length === 0 || !backend) return;
  const local = backend === 'local';
  if (local && report.runningNow) return;
  let connection: Connection | undefined;
  try {
    connection = await connectBackend(local ? { kind: 'local' } : { kind: 'url', url: backend }, stateDir, ctx);
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(10_000)]);
    for (const [jobId, job] of sessions) {
      try {
        const data = await connection.client.getState(asSessionId(job.sessionId ?? ''), { signal });
        report.timelines[jobId] = formatTimeline(data.state.draft);
      } catch {
        // The session may be gone (1002) or the backend down: status still shows what is on disk.
      }
    }
  } catch {
    // No backend: the on-disk view is still useful.
  } finally {
    await connection?.close();
  }
}

/** One job of a merged report: where it ran and how it stands. */
interface MergedJob {
  status: string;
  /** The shard (`2/3`) whose state holds it; absent for a state that is not a shard. */
  shard?: string;
  outputs: string[];
}

/** A workflow's runs across several state dirs, as one. */
interface MergedRun {
  name: string;
  /** The workflow's file name: the runners of a matrix each have their own checkout path. */
  workflow: string;
  backend: string;
  /** How many shards the matrix has (from the shards found), which were found, which are missing. */
  shards: { count: number; found: number[]; missing: number[] } | undefined;
  jobs: Record<string, MergedJob>;
  /** Jobs recorded by more than one state (two shards that ran the same job). */
  duplicates: string[];
  totals: { jobs: number; done: number; failed: number; notStarted: number; unfinished: number };
  creditsUsed: number;
  /** True when every shard is there and every job is done. */
  complete: boolean;
}

/**
 * `talk status --merge dir…`: the runs of several state dirs (e.g. each shard's `.talk/` from a
 * CI matrix, downloaded as artifacts) reported as one per workflow and backend: which shards
 * are there, each job once with its status and outputs, and the totals. Reads files only.
 */
async function mergedStatus(dirs: string[], file: string | undefined, options: StatusOptions, ctx: CommandContext): Promise<number> {
  const only = file === undefined ? undefined : path.basename(file);
  const runs = new Map<string, MergedRun>();
  for (const dir of dirs) {
    const stateDir = path.resolve(ctx.cwd, dir);
    if ((await stat(stateDir).catch(() => undefined))?.isDirectory() !== true) {
      throw new UsageError(`${dir} is not a state dir`, { hint: 'name the state dirs of the runs to merge, e.g. talk status --merge shard-1/.talk shard-2/.talk' });
    }
    for (const runDir of await listRunDirs(stateDir, { signal: ctx.signal })) {
      const state = (await readRunState(runDir, { signal: ctx.signal }))?.state;
      if (!state) continue;
      const workflow = path.basename(state.workflowPath);
      if (only !== undefined && workflow !== only) continue;
      const backend = state.backend ?? state.backendUrl ?? 'unknown';
      const key = `${workflow}\u0000${state.name}\u0000${backend}`;
      let run = runs.get(key);
      if (!run) {
        run = { name: state.name, workflow, backend, shards: undefined, jobs: {}, duplicates: [], totals: { jobs: 0, done: 0, failed: 0, notStarted: 0, unfinished: 0 }, creditsUsed: 0, complete: false };
        runs.set(key, run);
      }
      run.creditsUsed += state.creditsUsed;
      if (state.shard) {
        run.shards ??= { count: state.shard.count, found: [], missing: [] };
        run.shards.count = Math.max(run.shards.count, state.shard.count);
        if (!run.shards.found.includes(state.shard.index)) run.shards.found.push(state.shard.index);
      }
      for (const [jobId, job] of Object.entries(state.jobs)) {
        if (run.jobs[jobId] !== undefined && !run.duplicates.includes(jobId)) run.duplicates.push(jobId);
        const outputs = Object.values(job.steps).flatMap((s) => (s.output ? [displayPath(s.output.path, ctx.cwd)] : []));
        run.jobs[jobId] = { status: job.status, ...(state.shard ? { shard: `${state.shard.index}/${state.shard.count}` } : {}), outputs };
      }
    }
  }
  for (const run of runs.values()) {
    if (run.shards) {
      run.shards.found.sort((a, b) => a - b);
      run.shards.missing = Array.from({ length: run.shards.count }, (_, i) => i + 1).filter((i) => !run.shards?.found.includes(i));
    }
    const jobs = Object.values(run.jobs);
    run.totals = {
      jobs: jobs.length,
      done: jobs.filter((j) => j.status === 'done').length,
      failed: jobs.filter((j) => j.status === 'failed').length,
      notStarted: jobs.filter((j) => j.status === 'not-started').length,
      unfinished: jobs.filter((j) => j.status === 'pending' || j.status === 'running').length,
    };
    run.complete = (run.shards?.missing.length ?? 0) === 0 && run.totals.done === run.totals.jobs;
  }
  const merged = [...runs.values()].sort((a, b) => (a.workflow < b.workflow ? -1 : a.workflow > b.workflow ? 1 : 0));
  if (options.json) {
    ctx.stdout.write(`${JSON.stringify({ merged })}\n`);
    return ExitCode.ok;
  }
  if (merged.length === 0) {
    ctx.stdout.write(`no runs recorded in ${dirs.join(', ')}${file ? ` for ${file}` : ''}\n`);
    return ExitCode.ok;
  }
  const lines: string[] = [];
  for (const run of merged) {
    const t = run.totals;
    const shards = run.shards ? `${run.shards.found.length} of ${run.shards.count} shards${run.shards.missing.length > 0 ? ` (missing ${run.shards.missing.join(', ')})` : ''} · ` : '';
    const counts = [`${t.done} done`, ...(t.failed ? [`${t.failed} failed`] : []), ...(t.notStarted ? [`${t.notStarted} not started`] : []), ...(t.unfinished ? [`${t.unfinished} unfinished`] : [])];
    lines.push(`${run.name} (${run.workflow}) on ${run.backend}: ${run.complete ? 'complete' : 'incomplete'} · ${shards}${t.jobs} jobs: ${counts.join(', ')} · ${run.creditsUsed} credits used`);
    if (run.duplicates.length > 0) lines.push(`  recorded by more than one state: ${run.duplicates.join(', ')}`);
    const listed = listedJobs(Object.entries(run.jobs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), options.all === true);
    for (const [jobId, job] of listed) {
      lines.push(`  job ${jobId}: ${job.status}${job.shard ? ` · shard ${job.shard}` : ''}${job.outputs.length ? ` → ${job.outputs.join(', ')}` : ''}`);
    }
    const left = unlistedLine(Object.values(run.jobs), listed.length, commandLine(['status', ...(file === undefined ? [] : [file]), '--merge', ...dirs, '--all'], ctx.program));
    if (left !== undefined) lines.push(left);
  }
  ctx.stdout.write(`${lines.join('\n')}\n`);
  return ExitCode.ok;
}

/**
 * The runs the queue's workers recorded in Redis, as run states: per job its session, steps,
 * render ids and outputs; the run's status from its jobs (running while any is unfinished).
 */
async function readQueueRuns(address: QueueAddress, workflowPath: string | undefined): Promise<{ runDir: string; state: RunState }[]> {
  await reachRedis(address);
  const redis = connectRedis(address);
  try {
    const out: { runDir: string; state: RunState }[] = [];
    for (const runKey of (await redis.smembers(`${KEY_PREFIX}:runs`)).sort()) {
      const keys = runStateKeys(runKey);
      const meta = JSON.parse((await redis.get(keys.meta)) ?? '{}') as { workflowPath?: string; name?: string; backend?: string };
      if (meta.workflowPath === undefined || (workflowPath !== undefined && meta.workflowPath !== workflowPath)) continue;
      const jobs = await readRedisRunJobs(redis, runKey);
      const statuses = Object.values(jobs).map((j) => j.status);
      const status = statuses.some((st) => st === 'running' || st === 'pending') ? 'running' : statuses.some((st) => st === 'failed') ? 'failed' : statuses.some((st) => st === 'not-started') ? 'credits' : 'success';
      out.push({
        runDir: `${address.shown} (${keys.base})`,
        state: {
          version: STATE_FORMAT_VERSION,
          workflowPath: meta.workflowPath,
          name: meta.name ?? '',
          ...(meta.backend ? { backend: meta.backend, backendUrl: meta.backend } : {}),
          startedAt: '',
          updatedAt: new Date().toISOString(),
          finished: status === 'success',
          status,
          creditsUsed: Number((await redis.get(keys.spent)) ?? 0),
          jobs,
        },
      });
    }
    return out;
  } finally {
    await redis.quit().catch(() => undefined);
  }
}
