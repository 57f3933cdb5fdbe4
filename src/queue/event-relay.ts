/**
 * A job's events, from the worker running it to the `talk run --queue` following it, through
 * BullMQ's job progress (one Redis write, and an entry in the queue's event stream, each).
 * In order, and batched: the events that arrive while one write is on its way go together in
 * the next, so a burst (two uploads finishing, a step's done and the next one's start) costs
 * one write rather than one per event, and a slow Redis makes the batches bigger, not the
 * backlog longer.
 */
import type { TalkEvent } from '../core/events.js';
import { isRecord } from '../core/guards.js';

/** What one progress write carries. */
export interface RelayedBatch {
  events: TalkEvent[];
}

/** The worker's side: `push` every event; `flushed()` once the job is done. */
export class EventRelay {
  private queued: TalkEvent[] = [];
  /** A write is scheduled that has not taken its batch yet: new events join it. */
  private scheduled = false;
  private chain: Promise<void> = Promise.resolve();

  /** @param send one progress write; a failure drops that batch (the follower misses lines, the job goes on). */
  constructor(private readonly send: (batch: RelayedBatch) => Promise<unknown>) {}

  push(event: TalkEvent): void {
    this.queued.push(event);
    if (this.scheduled) return;
    this.scheduled = true;
    this.chain = this.chain.then(async () => {
      this.scheduled = false;
      const events = this.queued;
      this.queued = [];
      await this.send({ events }).catch(() => undefined);
    });
  }

  /** Resolves once every event pushed so far has been written (or its write failed). */
  flushed(): Promise<void> {
    return this.chain;
  }
}

/** The follower's side: the events of one progress write (nothing for anything else). */
export function relayedEvents(data: unknown): TalkEvent[] {
  const events = isRecord(data) ? data['events'] : undefined;
  return Array.isArray(events) ? (events as TalkEvent[]) : [];
}
