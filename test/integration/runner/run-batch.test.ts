import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { batchForm, createRig, type Rig } from './rig.js';
import { parseFaultRule } from '../../../src/local-backend/index.js';
import type { TalkEvent } from '../../../src/core/events.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const isMp4 = async (file: string): Promise<boolean> => (await readFile(file)).subarray(4, 8).toString() === 'ftyp';

describe('batches and the long form', () => {
  it('foreach: 20 items at concurrency 5 end with 20 MP4s, and in-flight never exceeds the limits', async () => {
    const yaml = batchForm('batch', 5, ['limits:', '  uploads: 3', '  renders: 2']);
    // Latency keeps work in flight long enough for the gauges to see any overlap.
    // Renders take at least 300 ms: with five jobs in flight the renders limit (2) is reached.
    rig = await createRig(yaml, { latency: { upload: 40, session: 20, render: 300 } }, 20);
    // Jobs in flight = jobs between their first step:start and their last step end.
    const open = new Set<string>();
    const remaining = new Map<string, number>();
    let maxJobs = 0;
    const onEvent = (e: TalkEvent): void => {
      if (e.type === 'step:start') {
        if (!remaining.has(e.job)) remaining.set(e.job, 4);
        open.add(e.job);
        maxJobs = Math.max(maxJobs, open.size);
      }
      if (e.type === 'step:done' || e.type === 'step:failed' || e.type === 'step:skipped') {
        const left = (remaining.get(e.job) ?? 4) - 1;
        remaining.set(e.job, left);
        if (left === 0) open.delete(e.job);
      }
    };
    // Renders in flight as the backend sees them: submitted and not yet finished.
    let rendering = 0;
    let maxRendering = 0;
    const off = rig.backend.onEvent((e) => {
      if (e.type === 'render:submitted') maxRendering = Math.max(maxRendering, ++rendering);
      if (e.type === 'render:completed' || e.type === 'render:failed') rendering -= 1;
    });
    const { outcome, plan } = await rig.run({ onEvent });
    off();
    expect(plan.jobs).toHaveLength(20);
    expect(outcome.status).toBe('success');
    expect(outcome.outputs).toHaveLength(20);
    for (const out of outcome.outputs) expect(await isMp4(out.path)).toBe(true);
    expect(maxJobs).toBeLessThanOrEqual(5);
    expect(maxJobs).toBeGreaterThan(1);
    const stats = rig.backend.stats();
    expect(stats.maxInFlight['upload']).toBeGreaterThan(1);
    expect(stats.maxInFlight['upload']).toBeLessThanOrEqual(3);
    // The limit, reached and never crossed (`> 0` could not fail: twenty renders ran).
    expect(maxRendering).toBe(2);
    expect(stats.rendersStarted).toBe(20);
    expect(stats.messages).toBe(20);
    expect(stats.sessionsCreated).toBe(20);
    expect(path.basename(outcome.outputs[0]!.path)).toMatch(/^p\d\d\.mp4$/);
  });

  it('long form: a credits guard, parallel uploads, two exports of one session', async () => {
    const yaml = [
      'version: 1',
      'name: long',
      'inputs:',
      '  portrait: portrait.jpg',
      '  voice: voice.mp3',
      'steps:',
      '  - id: enough',
      '    credits: { min: 100 }',
      '  - id: up-portrait',
      '    upload: portrait',
      '    needs: [enough]',
      '  - id: up-voice',
      '    upload: voice',
      '    needs: [enough]',
      '  - id: animate',
      '    needs: [up-portrait, up-voice]',
      '    instruction: Make this photo talk using my voiceover',
      '  - id: square',
      '    needs: [animate]',
      '    export: { resolution: 720p, quality: low, aspect: "1:1", output: out/square.mp4 }',
      '  - id: wide',
      '    needs: [animate]',
      '    export: { resolution: 720p, quality: low, aspect: "16:9", output: out/wide.mp4 }',
      '',
    ].join('\n');
    rig = await createRig(yaml);
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('success');
    expect(await isMp4(path.join(rig.dir, 'out', 'square.mp4'))).toBe(true);
    expect(await isMp4(path.join(rig.dir, 'out', 'wide.mp4'))).toBe(true);
    // Every step started exactly once.
    const starts = events.filter((e) => e.type === 'step:start').map((e) => (e as { step: string }).step).sort();
    expect(starts).toEqual(['animate', 'enough', 'square', 'up-portrait', 'up-voice', 'wide']);
    const stats = rig.backend.stats();
    expect(stats.rendersStarted).toBe(2);
    expect(stats.messages).toBe(1);
    expect(stats.sessionsCreated).toBe(1);
  });

  it('a credits guard that cannot be met stops the job with status credits before any turn', async () => {
    const yaml = [
      'version: 1',
      'name: guard',
      'inputs:',
      '  portrait: portrait.jpg',
      'steps:',
      '  - id: enough',
      '    credits: { min: 5000 }',
      '  - id: up',
      '    upload: portrait',
      '    needs: [enough]',
      '',
    ].join('\n');
    rig = await createRig(yaml);
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('credits');
    expect(events.find((e) => e.type === 'step:skipped' && e.step === 'up')).toMatchObject({ reason: 'upstream-failed' });
    expect(rig.backend.stats().uploads).toBe(0);
  });
});

describe('failure policy', () => {
  const twoItems = batchForm('pair', 1);

  it('--fail-fast stops starting new work after the first failure; without it the other job still runs', async () => {
    rig = await createRig(twoItems, {}, 2);
    rig.backend.addFaults([parseFaultRule('upload:status=400:x2')]);
    const { outcome, events } = await rig.run({ failFast: true });
    expect(outcome.status).toBe('failed');
    const second = outcome.jobs.find((j) => j.job === 'p01');
    expect(second?.status).toBe('failed');
    expect(events.filter((e) => e.type === 'step:skipped' && e.job === 'p01').every((e) => (e as { reason: string }).reason === 'fail-fast')).toBe(true);
    expect(rig.backend.stats().sessionsCreated).toBe(1);

    rig.backend.addFaults([parseFaultRule('upload:status=400:x2')]);
    const again = await rig.run({ fresh: true });
    expect(again.outcome.jobs.map((j) => j.status)).toEqual(['failed', 'done']);
  });

  it('transient backend errors are retried and reported as step:retry', async () => {
    rig = await createRig(twoItems.replace('concurrency: 1', 'concurrency: 2'), {}, 1);
    rig.backend.addFaults([parseFaultRule('state:status=503:x2')]);
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('success');
    expect(events.some((e) => e.type === 'step:retry')).toBe(true);
    expect(rig.backend.stats().messages).toBe(1);
  });
});
