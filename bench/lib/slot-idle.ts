// The queue's overhead per job as queue.bench.ts and queue-floor.bench.ts score it, from the
// jobs' own records: how long the runners' slots stood empty while jobs waited for them.

/** One finished queue job: BullMQ's added, taken (processedOn) and finished times, and the runner's span on it (epoch ms). */
export interface JobRecord {
  added: number;
  taken: number;
  finished: number;
  runFrom: number;
  runTo: number;
}

/** Slot-ms per job, split into the first wave and the rest, and the means per job beside it. */
export interface SlotIdle {
  total: number;
  firstWave: number;
  between: number;
  /** The first wave as a time: how long after the first job was added a slot's first job started, mean over the slots (once per batch, whatever its size). */
  slotStart: number;
  /** BullMQ taking a job → the runner starting it. */
  before: number;
  /** The runner's end → BullMQ recording the job finished. */
  after: number;
  /** The first job added, and the last one finished. */
  head: number;
  lastFinished: number;
}

/**
 * How long the runners' slots (the workers' concurrency together) stood empty while jobs
 * waited for them, from the first job added to the last one a runner started, in slot-ms per
 * job. In single-process `talk run` a slot is refilled the moment its job ends (0 by
 * construction); on the queue the end is recorded in Redis and the next job fetched from it
 * before a runner starts it. Split into the first wave (each slot empty from the first job
 * added until its first job starts) and the rest (between a job's end and the next start on
 * its slot). `debug` prints the first jobs' timeline.
 */
export function slotIdle(records: readonly JobRecord[], slots: number, debug = false): SlotIdle {
  const added = Math.min(...records.map((r) => r.added));
  const starts = records.map((r) => r.runFrom).sort((a, b) => a - b);
  const lastStart = starts.at(-1) ?? added;
  const held = records.reduce((sum, r) => sum + Math.max(0, Math.min(r.runTo, lastStart) - Math.max(r.runFrom, added)), 0);
  const idle = slots * (lastStart - added) - held;
  const firstWave = starts.slice(0, slots).reduce((sum, t) => sum + (t - added), 0);
  if (debug) {
    for (const r of [...records].sort((a, b) => a.runFrom - b.runFrom).slice(0, slots + 5)) {
      console.log(`      added +${r.added - added} taken +${r.taken - added} runFrom +${r.runFrom - added} runTo +${r.runTo - added} finished +${r.finished - added}`);
    }
  }
  const n = records.length;
  const mean = (f: (r: JobRecord) => number): number => records.reduce((sum, r) => sum + f(r), 0) / n;
  return {
    total: idle / n,
    firstWave: firstWave / n,
    between: (idle - firstWave) / n,
    slotStart: firstWave / Math.min(slots, starts.length),
    before: mean((r) => r.runFrom - r.taken),
    after: mean((r) => r.finished - r.runTo),
    head: added,
    lastFinished: Math.max(...records.map((r) => r.finished)),
  };
}
