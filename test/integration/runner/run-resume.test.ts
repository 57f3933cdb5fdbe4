import { afterEach, describe, expect, it } from 'vitest';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRig, shortForm, type Rig } from './rig.js';
import { readRunState, runDirFor, stateDirFor, openStateStore, StateLockedError, StateWriteError } from '../../../src/state/index.js';
import { rmSync, writeFileSync } from 'node:fs';
import type { TalkEvent } from '../../../src/core/events.js';
import type { JobState } from '../../../src/state/types.js';
import { parseFaultRule } from '../../../src/local-backend/index.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const isMp4 = async (file: string): Promise<boolean> => (await readFile(file)).subarray(4, 8).toString() === 'ftyp';
const skippedSteps = (events: TalkEvent[]): string[] => events.filter((e) => e.type === 'step:skipped').map((e) => (e as { step: string }).step);
const startedSteps = (events: TalkEvent[]): string[] => events.filter((e) => e.type === 'step:start').map((e) => (e as { step: string }).step);

/** The `main` job as the run state on disk has it. */
async function mainJob(r: Rig): Promise<JobState | undefined> {
  const state = await readRunState(runDirFor(stateDirFor(r.workflow, undefined, r.dir), r.workflow, r.backend.url));
  return state?.state.jobs['main'];
}

async function sessionOf(r: Rig): Promise<string | undefined> {
  return (await mainJob(r))?.sessionId;
}

describe('resume', () => {
  it('skips everything when nothing changed and the output is intact; re-downloads a deleted output without rendering', async () => {
    rig = await createRig(shortForm());
    expect((await rig.run()).outcome.status).toBe('success');
    const again = await rig.run();
    expect(again.outcome.status).toBe('success');
    expect(startedSteps(again.events)).toEqual([]);
    expect(skippedSteps(again.events)).toHaveLength(4);
    const out = path.join(rig.dir, 'out', 'rig.mp4');
    await rm(out);
    const third = await rig.run();
    expect(startedSteps(third.events)).toEqual(['export']);
    expect(await isMp4(out)).toBe(true);
    const stats = rig.backend.stats();
    expect(stats.rendersStarted).toBe(1);
    expect(stats.messages).toBe(1);
    expect(stats.sessionsCreated).toBe(1);
  });

  it('export option changed: same session, one new render, no new turn', async () => {
    rig = await createRig(shortForm());
    await rig.run();
    const session = await sessionOf(rig);
    await rig.writeWorkflow(shortForm({ exportLines: '  resolution: 720p\n  quality: low\n  aspect: "1:1"\n  output: out/${{ workflow.name }}.mp4' }));
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('success');
    expect(startedSteps(events)).toEqual(['export']);
    expect(await sessionOf(rig)).toBe(session);
    const stats = rig.backend.stats();
    expect(stats.rendersStarted).toBe(2);
    expect(stats.messages).toBe(1);
    expect(stats.sessionsCreated).toBe(1);
  });

  it('instruction changed: a new session, the turn and the render run again', async () => {
    rig = await createRig(shortForm());
    await rig.run();
    const session = await sessionOf(rig);
    await rig.writeWorkflow(shortForm({ instructions: ['Make this photo talk using my voiceover and loop it'] }));
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('success');
    expect(events.some((e) => e.type === 'notice' && /new session/.test(e.message))).toBe(true);
    expect(await sessionOf(rig)).not.toBe(session);
    const stats = rig.backend.stats();
    expect(stats.sessionsCreated).toBe(2);
    expect(stats.messages).toBe(2);
    expect(stats.rendersStarted).toBe(2);
  });

  it('an interrupt during render polling exits interrupted; the resumed run re-attaches to the same render', async () => {
    rig = await createRig(shortForm(), { latency: { render: 1500 } });
    const controller = new AbortController();
    const off = rig.backend.onEvent((e) => {
      if (e.type === 'render:submitted') controller.abort();
    });
    const first = await rig.run({ signal: controller.signal });
    off();
    expect(first.outcome.status).toBe('interrupted');
    expect(first.events.at(-1)).toMatchObject({ type: 'run:done', status: 'interrupted' });
    const render = (await mainJob(rig))?.steps['export']?.render;
    expect(render?.phase).toMatch(/submitting|submitted/);
    const second = await rig.run();
    expect(second.outcome.status).toBe('success');
    expect(await isMp4(path.join(rig.dir, 'out', 'rig.mp4'))).toBe(true);
    const stats = rig.backend.stats();
    expect(stats.rendersStarted).toBe(1);
    expect(stats.messages).toBe(1);
  });

  it('budget too small: exit status credits, and the job is not started at all (no session, no upload, no credit)', async () => {
    rig = await createRig(shortForm({ top: 'budget:\n  credits: 50' }));
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('credits');
    expect(outcome.jobs).toMatchObject([{ job: 'main', status: 'not-started', notStarted: { needs: 100, available: 50, limitedBy: 'budget' } }]);
    expect(startedSteps(events)).toEqual([]);
    expect(events.filter((e) => e.type === 'step:skipped').map((e) => (e as { reason: string }).reason)).toEqual(['not-started', 'not-started', 'not-started', 'not-started']);
    expect(events.some((e) => e.type === 'notice' && /1 of 1 jobs not started: they need about 100 credits, more than budget\.credits/.test(e.message))).toBe(true);
    const stats = rig.backend.stats();
    expect(stats.creditsSpent).toBe(0);
    expect(stats.messages).toBe(0);
    expect(stats.sessionsCreated).toBe(0);
    expect(stats.uploads).toBe(0);
    // `talk status` shows the job as not started, not as still running.
    expect((await mainJob(rig))?.status).toBe('not-started');
  });

  it('2001 from the backend: status credits with the registration link (bind), and the refused turn is sent by the next run', async () => {
    rig = await createRig(shortForm());
    rig.backend.addFaults([parseFaultRule('sse:code=2001:x1')]);
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('credits');
    const failed = events.find((e) => e.type === 'step:failed');
    expect(failed?.type === 'step:failed' ? failed.error.hint : '').toMatch(/register\?bind=anon_/);
    expect(rig.backend.stats().creditsSpent).toBe(0);
    // The refused turn was never started, so the next run sends it (once).
    const again = await rig.run();
    expect(again.outcome.status).toBe('success');
    expect(rig.backend.stats().messages).toBe(1);
  });

  it('a session the backend no longer knows: the job starts over in a new session, reported as a retry, not a failure', async () => {
    rig = await createRig(shortForm());
    rig.backend.addFaults([parseFaultRule('sse:code=1002:x1')]);
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('success');
    // Nothing failed or was given up: consumers of the events see one retry, then the steps again.
    expect(events.filter((e) => e.type === 'step:failed' || e.type === 'step:skipped')).toEqual([]);
    expect(events.filter((e) => e.type === 'step:retry')).toMatchObject([{ step: 'instruction-1', attempt: 2, reason: expect.stringMatching(/code 1002.*new session/) as unknown }]);
    expect(startedSteps(events).filter((s) => s !== 'upload-portrait' && s !== 'upload-voice')).toEqual(['instruction-1', 'instruction-1', 'export']);
    expect(startedSteps(events).filter((s) => s === 'upload-portrait')).toHaveLength(2);
    expect(await isMp4(path.join(rig.dir, 'out', 'rig.mp4'))).toBe(true);
    const stats = rig.backend.stats();
    expect(stats.sessionsCreated).toBe(2);
    expect(stats.uploads).toBe(4);
    expect(stats.messages).toBe(1);
    expect(stats.rendersStarted).toBe(1);
    expect((await mainJob(rig))?.status).toBe('done');
  });

  it('both uploads find the session gone: one restart for the job, each upload retried once', async () => {
    rig = await createRig(shortForm());
    rig.backend.addFaults([parseFaultRule('upload:code=1002:x2')]);
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('success');
    expect(events.filter((e) => e.type === 'step:failed' || e.type === 'step:skipped')).toEqual([]);
    expect(events.filter((e) => e.type === 'step:retry').map((e) => (e as { step: string }).step).sort()).toEqual(['upload-portrait', 'upload-voice']);
    expect(events.filter((e) => e.type === 'notice' && /no longer knows its session/.test(e.message))).toHaveLength(1);
    const stats = rig.backend.stats();
    expect(stats.sessionsCreated).toBe(2);
    expect(stats.messages).toBe(1);
    expect(stats.rendersStarted).toBe(1);
  });

  it('interrupted just after the session was lost: the waiting steps end as interrupted, and the next run finishes', async () => {
    rig = await createRig(shortForm());
    rig.backend.addFaults([parseFaultRule('sse:code=1002:x1')]);
    const controller = new AbortController();
    const { outcome, events } = await rig.run({ signal: controller.signal, onEvent: (e) => e.type === 'step:retry' && controller.abort() });
    expect(outcome.status).toBe('interrupted');
    expect(events.filter((e) => e.type === 'step:skipped').map((e) => [(e as { step: string }).step, (e as { reason: string }).reason])).toEqual([
      ['instruction-1', 'interrupted'],
      ['export', 'interrupted'],
    ]);
    expect(events.some((e) => e.type === 'step:failed')).toBe(false);
    const again = await rig.run();
    expect(again.outcome.status).toBe('success');
    expect(await isMp4(path.join(rig.dir, 'out', 'rig.mp4'))).toBe(true);
    expect(rig.backend.stats().messages).toBe(1);
    expect(rig.backend.stats().rendersStarted).toBe(1);
  });

  it('a failed state write stops the run loudly, before anything is paid', async () => {
    rig = await createRig(shortForm());
    const runDir = runDirFor(stateDirFor(rig.workflow, undefined, rig.dir), rig.workflow, rig.backend.url);
    const off = rig.backend.onEvent((e) => {
      if (e.type !== 'session:created') return;
      off();
      // The state folder turns into a file: the next append cannot land.
      rmSync(runDir, { recursive: true, force: true });
      writeFileSync(runDir, 'not a folder');
    });
    await expect(rig.run()).rejects.toBeInstanceOf(StateWriteError);
    expect(rig.backend.stats().messages).toBe(0);
    expect(rig.backend.stats().creditsSpent).toBe(0);
  });

  it('a second runner on the same state gets a clear error; a stale lock is taken over with a notice', async () => {
    rig = await createRig(shortForm());
    const dir = runDirFor(stateDirFor(rig.workflow, undefined, rig.dir), rig.workflow, rig.backend.url);
    const holder = await openStateStore({ dir, workflowPath: rig.workflow, name: 'rig' });
    await expect(rig.run()).rejects.toBeInstanceOf(StateLockedError);
    await holder.close();
    // A lock left by a process that is gone (pid far above any live one on this host).
    await writeFile(path.join(dir, 'lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), startedAt: '2026-01-01T00:00:00Z' }));
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('success');
    expect(events.some((e) => e.type === 'notice' && /took over the run lock/.test(e.message))).toBe(true);
  });
});
