/**
 * The instruction turns of one account across every worker of a queue, for disconnect
 * recovery's judgement (SPEC §3: a charge counts as a turn's evidence only when no other turn
 * of the account is in flight — in this run, or on any worker sharing its state).
 *
 * Each worker publishes its turns' spans to a Redis hash and reads the others' back every
 * `refreshMs`; recovery asks synchronously and gets the last read. Recovery reads at widening
 * intervals anyway, so a turn opened elsewhere since the last read is seen on its next read.
 * A worker keeps a heartbeat key alive; an open turn of a worker whose heartbeat is gone (it
 * died) counts as unsettled — it may have been charged, nobody concludes it — rather than
 * as a turn still being concluded.
 *
 * Keys: talk:turns:<account> (hash: "<worker>\0<turn>" → span JSON),
 * talk:worker-alive:<worker> (expires unless renewed).
 */
import type { Redis } from 'ioredis';
import { KEY_PREFIX } from './connection.js';

/** A span as the runner's books keep it (`TurnSpan`). */
interface Span {
  start: number;
  end: number | undefined;
  abandoned: boolean;
  charged: number;
}

/** Activity as the backend client's recovery reads it (`AccountActivity`). */
interface Activity {
  alone: boolean;
  othersOpen: number;
  othersUnsettled: number;
  othersCharged: number;
}

export interface RedisTurnsOptions {
  redis: Redis;
  account: string;
  worker: string;
  /** Between two reads of the others' turns (default 250 ms). */
  refreshMs?: number;
  /** How long a heartbeat lasts unrenewed (default 10 s). */
  aliveMs?: number;
  /** Settled turns older than this are dropped (default 30 min). */
  keepMs?: number;
  now?: () => number;
}

/** One worker's view of the account's turns on every worker (the runner's `RemoteTurns`). */
export class RedisTurns {
  private readonly hash: string;
  private readonly alive: string;
  private readonly now: () => number;
  private others: { turn: string; span: Span; dead: boolean }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private writes: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: RedisTurnsOptions) {
    this.hash = `${KEY_PREFIX}:turns:${options.account}`;
    this.alive = `${KEY_PREFIX}:worker-alive:`;
    this.now = options.now ?? Date.now;
  }

  /** Start the heartbeat and the reads (timers that never keep the process alive). */
  async start(): Promise<void> {
    const aliveMs = this.options.aliveMs ?? 10_000;
    const beat = (): Promise<unknown> => this.options.redis.set(`${this.alive}${this.options.worker}`, '1', 'PX', aliveMs).catch(() => undefined);
    await beat();
    await this.refresh();
    this.heartbeat = setInterval(() => void beat(), Math.max(100, Math.floor(aliveMs / 3))).unref();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), this.options.refreshMs ?? 250).unref();
  }

  /** Stop the timers; this worker's heartbeat lapses (its open turns then count as unsettled). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    await this.writes;
  }

  publish(key: string, span: Span): void {
    const field = `${this.options.worker}\u0000${key}`;
    this.writes = this.writes.then(() => this.options.redis.hset(this.hash, field, JSON.stringify(span))).catch(() => undefined);
  }

  /** Read the others' turns now (the timer does it every `refreshMs`). */
  async refresh(): Promise<void> {
    const flat = await this.options.redis.hgetall(this.hash);
    const keep = this.now() - (this.options.keepMs ?? 30 * 60_000);
    const others: { worker: string; turn: string; span: Span }[] = [];
    const stale: string[] = [];
    for (const [field, text] of Object.entries(flat)) {
      const cut = field.indexOf('\u0000');
      const worker = field.slice(0, cut);
      const span = JSON.parse(text) as Span;
      if (span.end !== undefined && span.end !== null && span.end < keep) stale.push(field);
      else if (worker !== this.options.worker) others.push({ worker, turn: field.slice(cut + 1), span });
    }
    if (stale.length > 0) await this.options.redis.hdel(this.hash, ...stale);
    const workers = [...new Set(others.map((o) => o.worker))];
    const alive = workers.length === 0 ? [] : await this.options.redis.mget(workers.map((w) => `${this.alive}${w}`));
    const dead = new Set(workers.filter((_, i) => alive[i] === null));
    this.others = others.map((o) => ({ turn: o.turn, span: o.span, dead: dead.has(o.worker) }));
  }

  /** The other workers' turns overlapping the window from `since` (the turn `key` left out). */
  activity(key: string, since: number): Activity {
    const out: Activity = { alone: true, othersOpen: 0, othersUnsettled: 0, othersCharged: 0 };
    for (const { turn, span, dead } of this.others) {
      if (turn === key) continue;
      const end = span.end ?? undefined;
      if (end !== undefined && end < since) continue;
      out.alone = false;
      if (end !== undefined) out.othersCharged += span.charged;
      else if (span.abandoned || dead) out.othersUnsettled += 1;
      else out.othersOpen += 1;
    }
    return out;
  }
}
