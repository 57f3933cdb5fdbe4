/**
 * Disconnect recovery when several jobs share one account (SPEC §3): credits are per account,
 * so another job's freeze or charge must never be taken as proof that this job's turn ran.
 *
 * The batch tests spawn the built CLI (one process = one account) against a local backend in
 * this process, kill it at a moment chosen by the backend's events, and resume; the backend's
 * counters span both runs.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseFaultRule, startLocalBackend, type LocalBackend } from '../../../src/local-backend/index.js';
import { openStateStore, readRunState, runDirFor, stateDirFor } from '../../../src/state/index.js';
import type { TalkEvent } from '../../../src/core/events.js';
import { REPO_ROOT, runCli, spawnCli } from '../../helpers/cli.js';
import { batchForm, createRig, makeWorkspace, shortForm, type Rig } from './rig.js';
import { runKillTrials } from '../../helpers/kill-trials.js';

let backend: LocalBackend | undefined;
let dir: string | undefined;
let rig: Rig | undefined;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}, 120_000);

afterEach(async () => {
  await backend?.close();
  await rig?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  backend = undefined;
  rig = undefined;
  dir = undefined;
});

/** A two-item batch, both jobs side by side on the CLI's one anonymous account. */
const batch = batchForm('pair', 2);

function nextEvent(b: LocalBackend, type: string): Promise<void> {
  return new Promise((resolve) => {
    const off = b.onEvent((e) => {
      if (e.type === type) {
        off();
        resolve();
      }
    });
  });
}

async function runState(workflow: string, cwd: string, backendUrl: string) {
  return (await readRunState(runDirFor(stateDirFor(workflow, undefined, cwd), workflow, backendUrl)))?.state;
}

describe('disconnect recovery on a shared account', () => {
  it("another job's charge is not taken for this job's turn: killed while A's turn waits and B's is charged, the resume sends A once", async () => {
    dir = await makeWorkspace(2);
    // The first turn to arrive (call it A) is accepted and never started; the other (B) runs
    // and is charged. The account holds exactly the two generations.
    backend = await startLocalBackend({ dataDir: path.join(dir, 'backend-data'), silentEditRatio: 0, anonymousCredits: 200, faults: [parseFaultRule('sse:stall:x1')] });
    const workflow = path.join(dir, 'workflow.yaml');
    await writeFile(workflow, batch);
    const args = ['run', 'workflow.yaml', '--backend', backend.url, '--reporter', 'json'];

    const charged = nextEvent(backend, 'turn:done');
    const child = spawnCli(args, { cwd: dir });
    await charged;
    child.child.kill('SIGKILL');
    expect((await child.done).signal).toBe('SIGKILL');
    expect(backend.stats()).toMatchObject({ messages: 1, creditsSpent: 100, faultsFired: { 'sse:stall:x1': 1 } });

    const result = await runCli(args, { cwd: dir });
    expect(result.stderr).not.toMatch(/internal error/);
    expect(result.code).toBe(0);
    const notices = result.events.filter((e): e is Extract<TalkEvent, { type: 'notice' }> => e.type === 'notice').map((e) => e.message);
    expect(notices.some((m) => /did not apply; sending it again/.test(m))).toBe(true);
    for (const stem of ['p00', 'p01']) expect((await readFile(path.join(dir, 'out', `${stem}.mp4`))).subarray(4, 8).toString()).toBe('ftyp');
    const stats = backend.stats();
    expect(stats.messages).toBe(2);
    expect(stats.rendersStarted).toBe(2);
    expect(stats.creditsSpent).toBe(200);
    // The runner's own books agree with the backend's.
    expect((await runState(workflow, dir, backend.url))?.creditsUsed).toBe(200);
  }, 60_000);

  it('an export that finds no timeline after a turn concluded by recovery checks that turn again, sends it once, and finishes', async () => {
    // A state as an earlier version left it: the instruction recorded done by recovery (no
    // reply, 100 credits booked) although its turn never ran, so the export found no timeline
    // on every rerun.
    rig = await createRig(shortForm(), { faults: [parseFaultRule('sse:stall:x1')] });
    const controller = new AbortController();
    const first = rig.run({ signal: controller.signal, onEvent: (e) => {
      if (e.type === 'step:start' && e.step === 'instruction-1') {
        // The turn is recorded before it is sent; abort once the backend has stalled it.
        const poll = setInterval(() => {
          if ((rig?.backend.stats().faultsFired['sse:stall:x1'] ?? 0) > 0) {
            clearInterval(poll);
            controller.abort();
          }
        }, 20);
      }
    } });
    expect((await first).outcome.status).toBe('interrupted');

    const stateDir = runDirFor(stateDirFor(rig.workflow, undefined, rig.dir), rig.workflow, rig.backend.url);
    const store = await openStateStore({ dir: stateDir, workflowPath: rig.workflow, name: 'rig' });
    const step = store.step('main', 'instruction-1');
    expect(step?.turn?.baseline).toBeDefined();
    const { baseline: _dropped, ...turn } = step!.turn!;
    await store.putStep('main', 'instruction-1', { ...step!, status: 'done', turn: { ...turn, creditsUsed: 100 } });
    await store.updateRun({ creditsUsed: 100 });
    await store.close();

    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('success');
    expect(events.filter((e) => e.type === 'step:failed')).toEqual([]);
    expect(events.find((e) => e.type === 'step:retry' && e.step === 'export')).toMatchObject({ reason: expect.stringMatching(/no timeline.*concluded applied by disconnect recovery/) as unknown });
    expect(events.filter((e) => e.type === 'step:start').map((e) => (e as { step: string }).step)).toEqual(['export', 'instruction-1', 'export']);
    const stats = rig.backend.stats();
    expect(stats.messages).toBe(1);
    expect(stats.creditsSpent).toBe(100);
    expect(stats.rendersStarted).toBe(1);
    expect((await runState(rig.workflow, rig.dir, rig.backend.url))?.creditsUsed).toBe(100);
  }, 60_000);

  it('seeded kill -9 moments over a 3-item batch at concurrency 2: every trial ends with one turn, one render and one video per item, and the books agree', async () => {
    // The benchmark (`npm run bench -- kill`) runs 20 trials at cloud-like latencies; this runs
    // a few at a third of them. TALK_KILL_SEED replays a failing seed.
    const seed = Number(process.env['TALK_KILL_SEED'] ?? 20_261_202);
    const results = await runKillTrials({ seed, trials: 3, latency: { upload: 100, sse: 300, render: 700, download: 150 }, killWithinMs: 2_500 });
    const failed = results.filter((r) => r.problems.length > 0).map((r) => `trial ${r.trial} (kill at ${r.killAtMs} ms): ${r.problems.join('; ')}`);
    expect(failed, `seed ${seed}`).toEqual([]);
    expect(results.filter((r) => r.killed).length, `seed ${seed}: a trial must kill a run in flight`).toBeGreaterThan(0);
  }, 240_000);
});
