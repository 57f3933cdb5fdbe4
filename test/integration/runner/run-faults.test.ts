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
});
