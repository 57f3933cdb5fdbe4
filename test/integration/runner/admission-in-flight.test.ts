// Admission against a balance that already shows a charge the runner has not heard of yet: the
// backend charges a turn as it ends, and the runner books it when the stream's last event
// arrives. A job admitted in between saw that turn's cost twice — gone from the balance and
// still reserved — and on an account with exactly enough credits was refused (a 200-bundle
// watch burst failed its last bundle so). Here the news of one turn is held back by 1.5 s,
// on the real local backend, while the other job finishes and frees its slot.
import { afterEach, describe, expect, it } from 'vitest';
import { batchForm, createRig, type Rig } from './rig.js';
import type { BackendClient } from '../../../src/backend/types.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** The real client, except that the first turn's result reaches the runner `ms` after the backend ended (and charged) it. */
function firstTurnHeardLate(client: BackendClient, ms: number): BackendClient {
  let first = true;
  return new Proxy(client, {
    get(target, key, receiver) {
      if (key !== 'sendInstruction') return Reflect.get(target, key, receiver) as unknown;
      return async (...args: Parameters<BackendClient['sendInstruction']>) => {
        const late = first;
        first = false;
        const result = await target.sendInstruction(...args);
        if (late) await new Promise((resolve) => setTimeout(resolve, ms));
        return result;
      };
    },
  });
}

describe('admission while a turn of the run is in flight', () => {
  it('3 jobs, 2 at a time, on exactly 300 credits: the third waits for the turn to settle instead of counting it twice', async () => {
    rig = await createRig(batchForm('exact', 2), { anonymousCredits: 300 }, 3);
    const { outcome, events } = await rig.run({ wrapClient: (client) => firstTurnHeardLate(client, 1_500) });
    expect(outcome.status, JSON.stringify(events.filter((e) => e.type === 'step:skipped' || e.type === 'notice'))).toBe('success');
    expect(outcome.jobs.map((j) => j.status)).toEqual(['done', 'done', 'done']);
    expect(rig.backend.stats().creditsSpent).toBe(300);
    expect(outcome.creditsUsed).toBe(300);
  });
});
