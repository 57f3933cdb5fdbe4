/**
 * A clock and timers that move only when the test moves them (`advance`), for code that takes a
 * `Clock` and `Timers` (core/clock.ts, core/timers.ts): a check that depends on elapsed time
 * then holds however fast or slow the machine runs the rest of the test.
 */
import type { Clock } from '../../src/core/clock.js';
import type { CancelTimer, Timers } from '../../src/core/timers.js';

interface ManualTimer {
  due: number;
  /** Repeats every `every` ms (an interval); undefined for a one-shot timer. */
  every: number | undefined;
  callback: () => void;
}

export class ManualTime implements Clock, Timers {
  #now: number;
  #nextId = 0;
  readonly #timers = new Map<number, ManualTimer>();

  /** Starts at `start` (the real time by default, so file times stay comparable). */
  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): CancelTimer {
    return this.#add({ due: this.#now + Math.max(0, ms), every: undefined, callback });
  }

  setInterval(callback: () => void, ms: number): CancelTimer {
    const every = Math.max(1, ms);
    return this.#add({ due: this.#now + every, every, callback });
  }

  /** Timers set and not yet fired or cancelled. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Move time on by `ms`, firing each timer that falls due on the way, in due order, at its due time. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: [number, ManualTimer] | undefined;
      for (const entry of this.#timers) if (entry[1].due <= end && (next === undefined || entry[1].due < next[1].due)) next = entry;
      if (next === undefined) break;
      const [id, timer] = next;
      this.#now = Math.max(this.#now, timer.due);
      if (timer.every === undefined) this.#timers.delete(id);
      else timer.due += timer.every;
      timer.callback();
    }
    this.#now = end;
  }

  #add(timer: ManualTimer): CancelTimer {
    const id = this.#nextId++;
    this.#timers.set(id, timer);
    return () => {
      this.#timers.delete(id);
    };
  }
}
