/**
 * Kill -9 of a child `talk run` at chosen moments, then a second run on the same state. The
 * backend runs in this process, so its counters span both runs: a resume must never pay for a
 * turn or a render twice. Moments come from the child's NDJSON events or the backend's event
 * stream, never from sleeps.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startLocalBackend, type LocalBackend, type LocalBackendOptions } from '../../../src/local-backend/index.js';
import { runCli, spawnCli, REPO_ROOT } from '../../helpers/cli.js';
import { makeWorkspace, shortForm } from './rig.js';
import type { TalkEvent } from '../../../src/core/events.js';
import { readRunState, runDirFor, stateDirFor, type TurnRecord } from '../../../src/state/index.js';
import { rm } from 'node:fs/promises';

let backend: LocalBackend | undefined;
let dir: string | undefined;

beforeAll(() => {
  // The child runs the bundle (`npm test` builds it first); build it when a bare `vitest run` has none.
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}, 120_000);

afterEach(async () => {
  await backend?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  backend = undefined;
  dir = undefined;
});

async function setup(options: LocalBackendOptions): Promise<{ args: string[]; cwd: string; backend: LocalBackend }> {
  dir = await makeWorkspace();
  backend = await startLocalBackend({ dataDir: path.join(dir, 'backend-data'), silentEditRatio: 0, ...options });
  await writeFile(path.join(dir, 'workflow.yaml'), shortForm());
  return { args: ['run', 'workflow.yaml', '--backend', backend.url, '--reporter', 'json'], cwd: dir, backend };
}

async function killAt(args: string[], cwd: string, moment: (e: TalkEvent) => boolean, backendMoment?: Promise<unknown>): Promise<void> {
  const child = spawnCli(args, { cwd });
  if (backendMoment) await backendMoment;
  else await child.waitForEvent(moment);
  child.child.kill('SIGKILL');
  const result = await child.done;
  expect(result.signal).toBe('SIGKILL');
}

async function resumeAndCheck(args: string[], cwd: string, b: LocalBackend): Promise<TalkEvent[]> {
  const result = await runCli(args, { cwd });
  expect(result.stderr).not.toMatch(/internal error/);
  expect(result.code).toBe(0);
  const done = result.events.find((e) => e.type === 'run:done');
  expect(done).toMatchObject({ status: 'success' });
  const out = path.join(cwd, 'out', 'rig.mp4');
  const bytes = await readFile(out);
  expect(bytes.subarray(4, 8).toString()).toBe('ftyp');
  const recorded = done?.type === 'run:done' ? done.outputs[0] : undefined;
  expect(recorded?.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  const stats = b.stats();
  expect(stats.rendersStarted).toBe(1);
  expect(stats.messages).toBe(1);
  expect(stats.creditsSpent).toBe(100);
  return result.events;
}

/** The recorded turn of the run's instruction step, as on disk. */
async function instructionTurn(cwd: string): Promise<TurnRecord | undefined> {
  const workflow = path.join(cwd, 'workflow.yaml');
  const loaded = await readRunState(runDirFor(stateDirFor(workflow, undefined, cwd), workflow, backend?.url ?? ''));
  const steps = Object.values(loaded?.state.jobs ?? {}).flatMap((job) => Object.values(job.steps));
  return steps.find((step) => step.kind === 'instruction')?.turn;
}

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

describe('kill -9 and resume', () => {
  it('during an upload', async () => {
    const { args, cwd, backend: b } = await setup({ latency: { upload: 1500 } });
    await killAt(args, cwd, (e) => e.type === 'step:progress' && e.step.startsWith('upload'));
    expect(b.stats().messages).toBe(0);
    const events = await resumeAndCheck(args, cwd, b);
    expect(events.some((e) => e.type === 'notice' && /took over the run lock/.test(e.message))).toBe(true);
  });

  it('during an SSE turn: the turn is checked, not re-sent', async () => {
    const { args, cwd, backend: b } = await setup({ turnDelayMs: { generation: 1500, edit: 500 } });
    await killAt(args, cwd, () => false, nextEvent(b, 'turn:accepted'));
    // Written before the turn was sent: what disconnect recovery compares against.
    const inFlight = await instructionTurn(cwd);
    expect(inFlight?.baseline).toHaveProperty('snapshot.draftHash', inFlight?.draftRevision);
    expect(inFlight?.baseline).toHaveProperty('credits.available');
    const events = await resumeAndCheck(args, cwd, b);
    expect(events.some((e) => e.type === 'notice' && /was applied; it was not sent again/.test(e.message))).toBe(true);
    // Settled: the baseline is no longer needed and no longer kept.
    const settled = await instructionTurn(cwd);
    expect(settled?.draftRevision).toBe(inFlight?.draftRevision);
    expect(settled?.creditsUsed).toBe(100);
    expect(settled).not.toHaveProperty('baseline');
  });

  it('during render polling: the render is re-attached by id', async () => {
    const { args, cwd, backend: b } = await setup({ latency: { render: 2500 } });
    await killAt(args, cwd, (e) => e.type === 'step:progress' && e.step === 'export' && e.percent !== undefined);
    const events = await resumeAndCheck(args, cwd, b);
    expect(events.filter((e) => e.type === 'step:start').map((e) => (e as { step: string }).step)).toEqual(['export']);
  });

  it('during the download: only the download runs again', async () => {
    const { args, cwd, backend: b } = await setup({ latency: { download: 1500 } });
    await killAt(args, cwd, () => false, nextEvent(b, 'download:started'));
    const events = await resumeAndCheck(args, cwd, b);
    expect(events.filter((e) => e.type === 'step:start').map((e) => (e as { step: string }).step)).toEqual(['export']);
  });
});
