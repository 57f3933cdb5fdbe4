import { describe, expect, it } from 'vitest';
import { InterruptedError } from '../../../src/core/errors.js';
import { sleepOn } from '../../../src/core/timers.js';
import { ManualTime } from '../../helpers/manual-time.js';

describe('sleeping on injected timers', () => {
  it('ends when its timers say the time has passed, not before', async () => {
    const time = new ManualTime(0);
    let woke = false;
    const slept = sleepOn(time, 100).then(() => {
      woke = true;
    });
    time.advance(99);
    await Promise.resolve();
    expect(woke).toBe(false);
    time.advance(1);
    await slept;
    expect(woke).toBe(true);
    expect(time.pending).toBe(0);
  });

  it("rejects with the signal's reason on abort, else an interrupt, and leaves no timer", async () => {
    const time = new ManualTime(0);
    const controller = new AbortController();
    const slept = sleepOn(time, 100, controller.signal);
    const reason = new Error('render cancelled');
    controller.abort(reason);
    await expect(slept).rejects.toBe(reason);
    expect(time.pending).toBe(0);
    const aborted = new AbortController();
    aborted.abort();
    await expect(sleepOn(time, 100, aborted.signal)).rejects.toBeInstanceOf(InterruptedError);
    expect(time.pending).toBe(0);
  });
});
