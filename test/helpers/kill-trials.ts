/**
 * Test and benchmark helper: seeded kill -9 trials of a batch on one account. Each trial runs
 * the built CLI on a 3-item `foreach` at concurrency 2 against a local backend in this process,
 * kills it at a moment drawn from the seed, runs it again to the end, and checks what a user
 * pays for: one turn, one render and one video per item, and the backend's credits equal to
 * the runner's own books.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { createRandom } from '../../src/local-backend/random.js';
import { startLocalBackend, type LatencyMap } from '../../src/local-backend/index.js';
import { readRunState, runDirFor, stateDirFor } from '../../src/state/index.js';
import { runCli, spawnCli } from './cli.js';
import { batchForm, makeWorkspace } from '../integration/runner/rig.js';

export interface KillTrialOptions {
  seed: number;
  trials: number;
  /** Added latency per route, as `talk serve --latency`. */
  latency: LatencyMap;
  /** Kill moments are drawn from [0, killWithinMs) after the start of the first run. */
  killWithinMs: number;
}

/** What one trial saw. `problems` is empty when the trial ended clean. */
export interface KillTrialResult {
  trial: number;
  killAtMs: number;
  /** False when the first run had already finished before its kill moment. */
  killed: boolean;
  exitCode: number | null;
  messages: number;
  renders: number;
  backendCredits: number;
  runnerCredits: number | undefined;
  problems: string[];
}

const ITEMS = ['p00', 'p01', 'p02'];

const batch = batchForm('trio', 2);

/** Run the trials one after another; `onTrial` hears each result as it ends. */
export async function runKillTrials(options: KillTrialOptions, onTrial?: (r: KillTrialResult) => void): Promise<KillTrialResult[]> {
  const random = createRandom(options.seed);
  const results: KillTrialResult[] = [];
  for (let trial = 1; trial <= options.trials; trial += 1) {
    const killAtMs = Math.floor(random() * options.killWithinMs);
    const result = await runTrial(trial, killAtMs, options.latency);
    results.push(result);
    onTrial?.(result);
  }
  return results;
}

async function runTrial(trial: number, killAtMs: number, latency: LatencyMap): Promise<KillTrialResult> {
  const dir = await makeWorkspace(ITEMS.length);
  const backend = await startLocalBackend({ dataDir: path.join(dir, 'backend-data'), silentEditRatio: 0, anonymousCredits: 100 * ITEMS.length, latency });
  try {
    const workflow = path.join(dir, 'workflow.yaml');
    await writeFile(workflow, batch);
    const args = ['run', 'workflow.yaml', '--backend', backend.url, '--reporter', 'json'];
    const child = spawnCli(args, { cwd: dir });
    let exited = false;
    void child.done.then(() => {
      exited = true;
    });
    await sleep(killAtMs);
    const killed = !exited;
    child.child.kill('SIGKILL');
    await child.done;

    const resumed = await runCli(args, { cwd: dir, timeoutMs: 120_000 });
    const stats = backend.stats();
    const state = (await readRunState(runDirFor(stateDirFor(workflow, undefined, dir), workflow, backend.url)))?.state;
    const problems: string[] = [];
    if (resumed.code !== 0) problems.push(`resume exited ${resumed.code}: ${resumed.stderr.trim().split('\n').slice(-2).join(' / ')}`);
    if (stats.messages !== ITEMS.length) problems.push(`${stats.messages} turns for ${ITEMS.length} items`);
    if (stats.rendersStarted !== ITEMS.length) problems.push(`${stats.rendersStarted} renders for ${ITEMS.length} items`);
    if (state?.creditsUsed !== stats.creditsSpent) problems.push(`runner booked ${state?.creditsUsed} credits, backend charged ${stats.creditsSpent}`);
    for (const stem of ITEMS) {
      const video = await readFile(path.join(dir, 'out', `${stem}.mp4`)).catch(() => undefined);
      if (video?.subarray(4, 8).toString() !== 'ftyp') problems.push(`no video for ${stem}`);
    }
    return { trial, killAtMs, killed, exitCode: resumed.code, messages: stats.messages, renders: stats.rendersStarted, backendCredits: stats.creditsSpent, runnerCredits: state?.creditsUsed, problems };
  } finally {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  }
}
