import { describe, expect, it } from 'vitest';
import { stamp, type TalkEvent } from '../../../src/core/events.js';
import { EventRelay, relayedEvents, type RelayedBatch } from '../../../src/queue/event-relay.js';

const notice = (message: string): TalkEvent => stamp({ type: 'notice', level: 'info', message });
const messages = (batch: RelayedBatch): string[] => batch.events.map((e) => (e.type === 'notice' ? e.message : e.type));

/** A send whose writes finish only when the test says so (gates, not sleeps). */
function gatedSend(): { send: (batch: RelayedBatch) => Promise<void>; sent: RelayedBatch[]; finish(error?: Error): void } {
  const sent: RelayedBatch[] = [];
  const pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  return {
    sent,
    send: (batch) =>
      new Promise<void>((resolve, reject) => {
        sent.push(batch);
        pending.push({ resolve, reject });
      }),
    finish(error) {
      const next = pending.shift();
      if (error) next?.reject(error);
      else next?.resolve();
    },
  };
}

describe('EventRelay', () => {
  it('sends events in order; those pushed while a write is on its way go together in the next one', async () => {
    const gate = gatedSend();
    const relay = new EventRelay(gate.send);
    relay.push(notice('a'));
    await Promise.resolve();
    expect(gate.sent.map(messages)).toEqual([['a']]);
    relay.push(notice('b'));
    relay.push(notice('c'));
    relay.push(notice('d'));
    // Nothing more goes out while the first write is unanswered.
    await Promise.resolve();
    expect(gate.sent).toHaveLength(1);
    gate.finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(gate.sent.map(messages)).toEqual([['a'], ['b', 'c', 'd']]);
    let flushed = false;
    const done = relay.flushed().then(() => (flushed = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(flushed).toBe(false);
    gate.finish();
    await done;
    expect(flushed).toBe(true);
  });

  it('a failed write drops its batch and the next events still go out', async () => {
    const gate = gatedSend();
    const relay = new EventRelay(gate.send);
    relay.push(notice('lost'));
    await Promise.resolve();
    relay.push(notice('kept'));
    gate.finish(new Error('Redis went away'));
    await new Promise((resolve) => setImmediate(resolve));
    gate.finish();
    await relay.flushed();
    expect(gate.sent.map(messages)).toEqual([['lost'], ['kept']]);
  });

  it('the follower reads a batch back, and nothing from anything else', () => {
    const events = [notice('x'), notice('y')];
    expect(relayedEvents({ events })).toEqual(events);
    for (const other of [undefined, null, 3, 'text', [notice('z')], { type: 'notice' }]) expect(relayedEvents(other)).toEqual([]);
  });
});
