import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRig, shortForm, type Rig } from './rig.js';
import { probeMedia } from '../../../src/local-backend/index.js';
import { testTools } from '../../helpers/media.js';
import { readRunState, runDirFor, stateDirFor } from '../../../src/state/index.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('runner against the local backend', () => {
  it('runs the short form to a valid MP4', async () => {
    rig = await createRig(shortForm());
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('success');
    const out = path.join(rig.dir, 'out', 'rig.mp4');
    const bytes = await readFile(out);
    expect(bytes.subarray(4, 8).toString()).toBe('ftyp');
    // A playable H.264 file with the voice-over: video and audio streams, the export's size, the voice's length.
    const info = await probeMedia(testTools().ffprobe, out);
    expect(info).toMatchObject({ hasVideo: true, hasAudio: true, width: 720, height: 1280 });
    expect(info.duration).toBeGreaterThan(1.5);
    expect(events.at(-1)?.type).toBe('run:done');
    const stats = rig.backend.stats();
    expect(stats.rendersStarted).toBe(1);
    expect(stats.messages).toBe(1);
    expect(stats.creditsSpent).toBe(100);
    // The settled turn is on disk with its result; the recovery baseline is only for turns in flight.
    const loaded = await readRunState(runDirFor(stateDirFor(rig.workflow, undefined, rig.dir), rig.workflow, rig.backend.url));
    const turn = Object.values(loaded?.state.jobs ?? {}).flatMap((job) => Object.values(job.steps)).find((step) => step.kind === 'instruction')?.turn;
    expect(turn?.reply).toMatch(/talking avatar/);
    expect(turn?.creditsUsed).toBe(100);
    expect(turn).not.toHaveProperty('baseline');
  });

  it('reads time from the injected clock: event stamps, step durations, the recorded turn and progress pacing', async () => {
    rig = await createRig(shortForm());
    const frozen = Date.parse('2030-01-02T03:04:05.000Z');
    const { outcome, events } = await rig.run({ clock: { now: () => frozen } });
    expect(outcome.status).toBe('success');
    expect(outcome.durationMs).toBe(0);
    expect(new Set(events.map((e) => e.ts))).toEqual(new Set(['2030-01-02T03:04:05.000Z']));
    const done = events.filter((e) => e.type === 'step:done');
    expect(done.length).toBeGreaterThanOrEqual(3);
    for (const e of done) expect(e.durationMs).toBe(0);
    // Time stands still: after a step's first progress event, only labelled and final ones pass.
    const paced = new Map<string, number>();
    for (const e of events) {
      if (e.type === 'step:progress' && e.label === undefined && !(e.total !== undefined && e.bytes === e.total)) paced.set(e.step, (paced.get(e.step) ?? 0) + 1);
    }
    expect(paced.size).toBeGreaterThan(0);
    for (const [step, count] of paced) expect(count, step).toBe(1);
    const loaded = await readRunState(runDirFor(stateDirFor(rig.workflow, undefined, rig.dir), rig.workflow, rig.backend.url));
    const turn = Object.values(loaded?.state.jobs ?? {}).flatMap((job) => Object.values(job.steps)).find((step) => step.kind === 'instruction')?.turn;
    expect(turn).toMatchObject({ sentAt: '2030-01-02T03:04:05.000Z', settledAt: '2030-01-02T03:04:05.000Z' });
  });

  it('puts the project\'s browser link (a claim token, never the API token) on the job\'s last step', async () => {
    rig = await createRig(shortForm());
    const { outcome, events } = await rig.run({ projectLinks: true });
    expect(outcome.status).toBe('success');
    const done = events.filter((e) => e.type === 'step:done');
    const withLink = done.filter((e) => e.link !== undefined);
    expect(withLink.map((e) => e.step)).toEqual(['export']);
    expect(withLink[0]!.link).toMatch(/\/workspace\/claim\?ct=clm_[\w-]+$/);
    expect(withLink[0]!.link).not.toMatch(/nmv_usr_/);
    expect(rig.backend.stats().requests['claim']).toBe(1);
  });
});
