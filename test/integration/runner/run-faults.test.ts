import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRig, shortForm, type Rig } from './rig.js';
import { parseFaultRule } from '../../../src/local-backend/index.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('faults during a run', () => {
  it('a connection reset in the middle of the render download is retried: the video arrives, nothing is rendered or paid twice', async () => {
    rig = await createRig(shortForm(), { faults: [parseFaultRule('download:reset:x1')] });
    const { outcome, events } = await rig.run();
    expect(events.filter((e) => e.type === 'step:failed')).toEqual([]);
    expect(outcome.status).toBe('success');
    expect(events.filter((e) => e.type === 'step:retry' && e.step === 'export')).toHaveLength(1);
    expect((await readFile(path.join(rig.dir, 'out', 'rig.mp4'))).subarray(4, 8).toString()).toBe('ftyp');
    const stats = rig.backend.stats();
    expect(stats.faultsFired['download:reset:x1']).toBe(1);
    expect(stats.rendersStarted).toBe(1);
    expect(stats.messages).toBe(1);
    expect(stats.creditsSpent).toBe(100);
  });

  it('a render that fails is rendered once more under a new render id: one turn, two renders, one video', async () => {
    rig = await createRig(shortForm(), { faults: [parseFaultRule('render:fail:x1')] });
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('success');
    const retries = events.filter((e) => e.type === 'step:retry' && e.step === 'export');
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ reason: expect.stringMatching(/injected fault.*rendering again with a new render id/) as unknown });
    expect((await readFile(path.join(rig.dir, 'out', 'rig.mp4'))).subarray(4, 8).toString()).toBe('ftyp');
    const stats = rig.backend.stats();
    expect(stats.faultsFired['render:fail:x1']).toBe(1);
    expect(stats.rendersStarted).toBe(2);
    expect(stats.rendersCompleted).toBe(1);
    expect(stats.messages).toBe(1);
    expect(stats.creditsSpent).toBe(100);
  });

  it('a render that fails twice fails the export without a third render, and the turn is not paid again', async () => {
    rig = await createRig(shortForm(), { faults: [parseFaultRule('render:fail:x3')] });
    const { outcome, events } = await rig.run();
    expect(outcome.status).toBe('failed');
    expect(events.find((e) => e.type === 'step:failed')).toMatchObject({ step: 'export' });
    const stats = rig.backend.stats();
    expect(stats.rendersStarted).toBe(2);
    expect(stats.rendersCompleted).toBe(0);
    expect(stats.messages).toBe(1);
    expect(stats.creditsSpent).toBe(100);
  });
});
