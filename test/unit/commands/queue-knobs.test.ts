import { describe, expect, it } from 'vitest';
import { queueKnobsFromEnv } from '../../../src/commands/queue-knobs.js';
import { UsageError } from '../../../src/core/errors.js';

describe('queueKnobsFromEnv', () => {
  it("defaults to BullMQ's lock and stalled check, 5 hand-ons and a count of the workers every 5 s; reads each from the environment", () => {
    expect(queueKnobsFromEnv({})).toEqual({ lockDuration: 30_000, stalledInterval: 30_000, maxStalledCount: 5, presenceInterval: 5000 });
    expect(queueKnobsFromEnv({ TALK_QUEUE_LOCK_MS: '3000', TALK_QUEUE_STALLED_MS: '500', TALK_QUEUE_MAX_STALLED: '0', TALK_QUEUE_PRESENCE_MS: '200' })).toEqual({ lockDuration: 3000, stalledInterval: 500, maxStalledCount: 0, presenceInterval: 200 });
  });

  it('refuses what is not a whole number in range, as a usage error naming the variable', () => {
    for (const env of [{ TALK_QUEUE_LOCK_MS: '50' }, { TALK_QUEUE_STALLED_MS: '1.5' }, { TALK_QUEUE_PRESENCE_MS: '0' }, { TALK_QUEUE_MAX_STALLED: '-1' }, { TALK_QUEUE_MAX_STALLED: 'many' }]) {
      const name = Object.keys(env)[0]!;
      expect(() => queueKnobsFromEnv(env)).toThrow(UsageError);
      expect(() => queueKnobsFromEnv(env)).toThrow(new RegExp(`^${name} must be a whole number`));
    }
  });
});
