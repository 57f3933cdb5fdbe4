/**
 * Helpers for the watch tests: an inbox in a temp dir, bundle files with distinct content, an
 * event recorder to wait on, and a bounded condition wait (never a fixed sleep).
 */
import { mkdir, mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { WatchEvent } from '../../../src/watch/index.js';

export async function makeInbox(prefix = 'talk-watch-'): Promise<{ root: string; inbox: string; stateDir: string }> {
  const root = await mkdtemp(path.join(tmpdir(), prefix));
  const inbox = path.join(root, 'inbox');
  await mkdir(inbox, { recursive: true });
  return { root, inbox, stateDir: path.join(root, 'state') };
}

/** Write `<stem>.jpg` and `<stem>.mp3` with content unique to the stem (and `salt`). */
export async function dropStemBundle(inbox: string, stem: string, salt = ''): Promise<void> {
  await writeViaRename(path.join(inbox, `${stem}.jpg`), `portrait ${stem} ${salt}`);
  await writeViaRename(path.join(inbox, `${stem}.mp3`), `voice ${stem} ${salt}`);
}

/** Write a file the way copy tools do: under a `.part` name, then rename into place. */
export async function writeViaRename(file: string, content: string | Uint8Array): Promise<void> {
  const part = `${file}.part`;
  await writeFile(part, content);
  await rename(part, file);
}

/** Records watcher events and lets a test wait for one. */
export class EventLog {
  readonly events: WatchEvent[] = [];
  readonly #waiters: { predicate: (e: WatchEvent) => boolean; resolve: (e: WatchEvent) => void }[] = [];

  readonly push = (event: WatchEvent): void => {
    this.events.push(event);
    for (const waiter of [...this.#waiters]) {
      if (waiter.predicate(event)) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(event);
      }
    }
  };

  of<T extends WatchEvent['type']>(type: T): Extract<WatchEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<WatchEvent, { type: T }> => e.type === type);
  }

  /** Resolves with the first event (past or future) that matches. */
  async next(predicate: (e: WatchEvent) => boolean, timeoutMs = 20_000): Promise<WatchEvent> {
    const past = this.events.find(predicate);
    if (past) return past;
    return await new Promise<WatchEvent>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching watch event within ${timeoutMs} ms; saw ${this.events.map((e) => e.type).join(', ')}`)), timeoutMs);
      this.#waiters.push({
        predicate,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  /** Resolves once `count` events match. */
  async count(predicate: (e: WatchEvent) => boolean, count: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(() => this.events.filter(predicate).length >= count, timeoutMs, () => `expected ${count} events, saw ${this.events.filter(predicate).length}`);
  }
}

/** Bounded poll for a condition (file system state, counters); throws with `describe()` on timeout. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000, describe: () => string = () => 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${describe()}`);
    await delay(20);
  }
}

/** A manually released promise: lets a test hold a job until it says so. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
