import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRig, shortForm, type Rig } from './rig.js';

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
    expect(events.at(-1)?.type).toBe('run:done');
    const stats = rig.backend.stats();
    expect(stats.rendersStarted).toBe(1);
    expect(stats.messages).toBe(1);
    expect(stats.creditsSpent).toBe(100);
  });
});
