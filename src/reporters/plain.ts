/**
 * The `plain` reporter: one line per event, `HH:MM:SS job step message`, no ANSI, no
 * spinners, each line written (and so flushed) on its own: for CI logs and files.
 *
 * Progress is the one exception to "every event": transfers and renders report many times a
 * second, so a step's progress prints when it crosses a tenth, when its label changes, or at
 * least every 10 s; heartbeat-only waits print "⏳ still working" every 2 minutes.
 *
 * In GitHub Actions each job's lines are folded into a `::group::`. Groups cannot interleave,
 * so one running job streams live inside its group while the others' lines are held and
 * written as whole groups when the streaming job finishes (go-task's `group` output mode).
 */
import type { StepKind, TalkEvent } from '../core/events.js';
import type { OutputSink } from '../core/redact.js';
import {
  STILL_WORKING_EVERY_MS,
  TransferMeter,
  clockTime,
  describeDone,
  describeFailure,
  describeRetry,
  describeTransfer,
  formatCredits,
  formatElapsed,
  isHeartbeatLabel,
} from './format.js';
import { groupEnd, groupStart } from './github.js';
import type { RunTally } from './summary.js';
import { unreachable } from '../core/unreachable.js';

/** Least time between two progress lines of one step, when nothing else changed. */
const PROGRESS_EVERY_MS = 10_000;

interface StepProgressMemo {
  kind: StepKind | undefined;
  meter: TransferMeter;
  lastPrintedAt: number;
  lastBucket: number;
  lastLabel: string | undefined;
  /** When the last line that was not a heartbeat came out (or the step started). */
  lastActivityAt: number;
}

/** Options of the plain line writer. */
export interface PlainWriterOptions {
  out: OutputSink;
  quiet: boolean;
  verbose: boolean;
  /** Fold jobs into `::group::` blocks (GitHub Actions). */
  github: boolean;
  tally: RunTally;
  /** Output paths inside it are shown relative. */
  cwd?: string | undefined;
}

/** Turns events into plain lines. `emit` must be called after `tally.observe` for the same event. */
export class PlainWriter {
  private readonly steps = new Map<string, StepProgressMemo>();
  private activeGroup: string | undefined;
  private readonly held = new Map<string, string[]>();
  private readonly finished = new Set<string>();

  constructor(private readonly options: PlainWriterOptions) {}

  /** Writes the line(s) for one event; `finishedJob` is what `tally.observe` returned. */
  emit(event: TalkEvent, finishedJob: string | undefined): void {
    const line = this.lineFor(event);
    if (line !== undefined) {
      const job = 'job' in event ? event.job : undefined;
      this.write(job, line);
    }
    if (finishedJob !== undefined) this.jobFinished(finishedJob);
    if (event.type === 'run:done') this.flushAll();
  }

  /** Closes any open group and writes every held line (end of run, or close without run:done). */
  flushAll(): void {
    if (!this.options.github) return;
    if (this.activeGroup !== undefined) {
      this.options.out.write(groupEnd());
      this.activeGroup = undefined;
    }
    for (const [job, lines] of this.held) this.writeGroup(job, lines);
    this.held.clear();
  }

  private write(job: string | undefined, line: string): void {
    const { out, github } = this.options;
    if (!github || job === undefined) {
      out.write(line);
      return;
    }
    if (this.activeGroup === undefined && !this.finished.has(job)) {
      this.activeGroup = job;
      out.write(groupStart(`job ${job}`));
    }
    if (this.activeGroup === job) {
      out.write(line);
      return;
    }
    const lines = this.held.get(job) ?? [];
    lines.push(line);
    this.held.set(job, lines);
  }

  private writeGroup(job: string, lines: readonly string[]): void {
    const { out } = this.options;
    out.write(groupStart(`job ${job}`));
    for (const line of lines) out.write(line);
    out.write(groupEnd());
  }

  private jobFinished(job: string): void {
    this.finished.add(job);
    if (!this.options.github) return;
    if (this.activeGroup !== job) return;
    this.options.out.write(groupEnd());
    this.activeGroup = undefined;
    // Finished jobs' held lines go out whole; then the next running job streams live.
    for (const [heldJob, lines] of [...this.held]) {
      if (!this.finished.has(heldJob)) continue;
      this.writeGroup(heldJob, lines);
      this.held.delete(heldJob);
    }
    const next = [...this.held.keys()][0];
    if (next !== undefined) {
      const lines = this.held.get(next) ?? [];
      this.held.delete(next);
      this.activeGroup = next;
      this.options.out.write(groupStart(`job ${next}`));
      for (const line of lines) this.options.out.write(line);
    }
  }

  /** The line for an event, or undefined when this event prints nothing (quiet, throttled). */
  private lineFor(event: TalkEvent): string | undefined {
    const { quiet, verbose } = this.options;
    const at = (job: string | undefined, step: string | undefined, message: string): string =>
      `${clockTime(event.ts)} ${job ?? '-'} ${step ?? '-'} ${message}\n`;
    switch (event.type) {
      case 'run:start':
        if (quiet) return undefined;
        return at(
          undefined,
          undefined,
          `${event.resumed ? 'resuming' : 'starting'} ${event.name} (${event.workflow}) on ${event.backend}: ${event.jobs} ${event.jobs === 1 ? 'job' : 'jobs'}${event.shard ? ` (shard ${event.shard.index}/${event.shard.count}, of ${event.shard.of})` : ''}`,
        );
      case 'step:start': {
        const now = Date.parse(event.ts);
        this.steps.set(`${event.job}\u0000${event.step}`, {
          kind: event.kind,
          meter: new TransferMeter(),
          lastPrintedAt: now,
          lastBucket: -1,
          lastLabel: undefined,
          lastActivityAt: now,
        });
        if (quiet) return undefined;
        return at(event.job, event.step, `start ${event.kind}`);
      }
      case 'step:progress': {
        if (quiet) return undefined;
        const message = this.progressMessage(event);
        return message === undefined ? undefined : at(event.job, event.step, message);
      }
      case 'step:retry':
        if (quiet) return undefined;
        return at(event.job, event.step, describeRetry(event.reason, event.delayMs, event.attempt));
      case 'step:done':
        if (quiet) return undefined;
        return at(event.job, event.step, describeDone(event, this.options.cwd));
      case 'step:skipped':
        if (quiet) return undefined;
        return at(event.job, event.step, `skipped (${event.reason})`);
      case 'step:failed': {
        const hint = event.error.hint === undefined ? '' : ` → ${event.error.hint}`;
        return at(event.job, event.step, `${describeFailure(event.error)}${hint}`);
      }
      case 'notice':
        if (event.level === 'debug' && !verbose) return undefined;
        if (quiet && event.level !== 'error') return undefined;
        return at(event.job, event.step, event.level === 'info' ? event.message : `${event.level}: ${event.message}`);
      case 'run:done':
        if (quiet) return undefined;
        return at(undefined, undefined, `run ${event.status === 'credits' ? 'stopped: out of credits' : event.status} in ${formatElapsed(event.durationMs)} · ${formatCredits(event.creditsUsed)}`);
      default:
        return unreachable(event, 'event');
    }
  }

  private progressMessage(event: Extract<TalkEvent, { type: 'step:progress' }>): string | undefined {
    const key = `${event.job}\u0000${event.step}`;
    const now = Date.parse(event.ts);
    let memo = this.steps.get(key);
    if (memo === undefined) {
      memo = { kind: undefined, meter: new TransferMeter(), lastPrintedAt: now, lastBucket: -1, lastLabel: undefined, lastActivityAt: now };
      this.steps.set(key, memo);
    }
    if (isHeartbeatLabel(event.label) && event.bytes === undefined && event.percent === undefined) {
      // Only heartbeats: say so every 2 minutes of silence, not on every heartbeat.
      if (now - memo.lastActivityAt < STILL_WORKING_EVERY_MS || now - memo.lastPrintedAt < STILL_WORKING_EVERY_MS) return undefined;
      memo.lastPrintedAt = now;
      return `⏳ still working (${formatElapsed(now - memo.lastActivityAt)} since the last activity)`;
    }
    memo.lastActivityAt = now;
    const parts: string[] = [];
    let bucket = memo.lastBucket;
    if (event.bytes !== undefined) {
      const rate = memo.meter.sample(event.ts, event.bytes, event.total);
      parts.push(describeTransfer(memo.kind, event.bytes, event.total, rate));
      if (event.total !== undefined && event.total > 0) bucket = Math.floor((event.bytes / event.total) * 10);
    }
    if (event.percent !== undefined) {
      parts.push(`rendering ${Math.floor(event.percent)}%`);
      bucket = Math.floor(event.percent / 10);
    }
    const labelChanged = event.label !== undefined && event.label !== memo.lastLabel;
    if (event.label !== undefined) {
      memo.lastLabel = event.label;
      parts.unshift(event.label);
    }
    const due = now - memo.lastPrintedAt >= PROGRESS_EVERY_MS;
    if (!labelChanged && bucket === memo.lastBucket && !due) return undefined;
    memo.lastBucket = bucket;
    memo.lastPrintedAt = now;
    return parts.length === 0 ? undefined : parts.join(' · ');
  }
}
