/**
 * The `tty` reporter, drawn by listr2: a header with the run's counts, a task per job and its
 * steps as subtasks. Each listr2 task waits on a promise that the events settle, so listr2
 * does the drawing and the engine stays the only source of truth.
 *
 * What a step row shows: bytes with rate and ETA for transfers, percent for renders, the
 * agent's tool activity as a live label, "⏳ still working" after 2 minutes of heartbeats only,
 * and retries with their reason ("rate limited, retrying in 30 s").
 *
 * Big batches (more than `BIG_BATCH_JOBS` jobs): listr2 redraws every task on every change,
 * so a task per job and step costs O(tasks) per event — 200 jobs took minutes. Instead a few
 * "lanes" (listr2 tasks) show the running jobs, each with its steps as lines under it; a lane
 * with an empty title draws nothing (idle), and the header counts finished and waiting jobs.
 * 1,000 jobs draw as the header plus at most `LANES` running ones.
 *
 * Why one file of this size: the per-job view and the big-batch lanes draw the same rows from
 * the same event handling; the formatting (format.ts) and the counts (summary.ts) are already
 * their own modules.
 */
import { DefaultRenderer, Listr, ListrDefaultRendererLogLevels, ListrLogger, PRESET_TIMER, color, ProcessOutput, SimpleRenderer, TestRenderer, type ListrRendererFactory, type ListrTask, type ListrTaskWrapper } from 'listr2';
import { Writable } from 'node:stream';
import type { StepKind, TalkEvent } from '../core/events.js';
import type { OutputSink } from '../core/redact.js';
import {
  STILL_WORKING_EVERY_MS,
  TransferMeter,
  describeDone,
  describeRetry,
  describeTransfer,
  formatCredits,
  formatElapsed,
  isHeartbeatLabel,
  oneLine,
} from './format.js';
import { describeCounts, type RunTally, type StepProgress } from './summary.js';
import { unreachable } from '../core/unreachable.js';

/**
 * Marks that say what happened: a job with a failed step is ✖ (listr2 draws ⚠), and a step
 * the run stopped is ■ (listr2's rolled-back state, the summary's mark for interrupted).
 */
const MARKS = { [ListrDefaultRendererLogLevels.COMPLETED_WITH_FAILED_SUBTASKS]: '✖', [ListrDefaultRendererLogLevels.ROLLED_BACK]: '■' };
const MARK_COLORS = { [ListrDefaultRendererLogLevels.COMPLETED_WITH_FAILED_SUBTASKS]: color.red, [ListrDefaultRendererLogLevels.ROLLED_BACK]: color.yellow };

/** Above this many jobs, finished and waiting jobs collapse into the header's counts. */
export const BIG_BATCH_JOBS = 10;

/** Rows for running jobs in a big batch; more running jobs are counted in the header. */
export const LANES = 6;

/** listr2 renderer to draw with: `default` on a terminal, `test` in unit tests. */
export type TtyRendererName = 'default' | 'test';

/** Options of the tty view. */
export interface TtyViewOptions {
  out: OutputSink;
  tally: RunTally;
  verbose: boolean;
  renderer?: TtyRendererName;
  /** Least time between two applications of changes to listr2 (default 100 ms; 0 with the test renderer). */
  frameMs?: number;
  /** Output paths inside it are shown relative. */
  cwd?: string | undefined;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  settled: boolean;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  const d: Deferred<T> = {
    promise,
    resolve: (value: T) => {
      if (d.settled) return;
      d.settled = true;
      resolve(value);
    },
    settled: false,
  };
  return d;
}

/** How a step's row ends. */
type StepOutcome = { kind: 'done'; title: string } | { kind: 'skipped'; reason: string } | { kind: 'interrupted'; title: string } | { kind: 'failed'; message: string };

type Wrapper = ListrTaskWrapper<unknown, ListrRendererFactory, ListrRendererFactory>;

/** A notice as the view shows it: its level unless info, its job, the message on one line. */
function noticeText(event: Extract<TalkEvent, { type: 'notice' }>): string {
  return `${event.level === 'info' ? '' : `${event.level}: `}${event.job === undefined ? '' : `${event.job}: `}${oneLine(event.message, 200)}`;
}

/**
 * Coalesces row changes into one application per frame. listr2 redraws the whole list on every
 * title or output change, and a redraw costs milliseconds (string widths for wrapping), so a
 * burst of progress events would otherwise cost a redraw each.
 */
class FrameScheduler {
  private readonly dirty = new Set<Row>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private frameMs: number) {}

  mark(row: Row): void {
    if (this.frameMs <= 0) {
      row.apply();
      return;
    }
    this.dirty.add(row);
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.frameMs);
      // A pending frame never keeps the process alive; close() flushes it.
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const rows = [...this.dirty];
    this.dirty.clear();
    for (const row of rows) row.apply();
  }

  /** From now on apply every change at once (the run is ending: the last frame must be complete). */
  immediate(): void {
    this.frameMs = 0;
    this.flush();
  }
}

/** What a row should show; applied to the listr2 task when it exists (it starts a tick later). */
class Row {
  wrapper: Wrapper | undefined;
  title: string;
  output: string | undefined;
  private outputChanged = false;

  constructor(
    title: string,
    private readonly frames: FrameScheduler,
  ) {
    this.title = title;
  }

  setTitle(title: string): void {
    if (title === this.title) return;
    this.title = title;
    this.frames.mark(this);
  }

  /** `undefined` clears the row's output line (listr2 draws nothing for an empty one). */
  setOutput(output: string | undefined): void {
    if (output === this.output) return;
    this.output = output;
    this.outputChanged = true;
    this.frames.mark(this);
  }

  /** Hands pending changes to listr2 (each assignment there is a redraw). */
  apply(): void {
    if (this.wrapper === undefined) return;
    if (this.wrapper.title !== this.title) this.wrapper.title = this.title;
    if (this.outputChanged) this.wrapper.output = this.output ?? '';
    this.outputChanged = false;
  }

  attach(wrapper: Wrapper): void {
    this.wrapper = wrapper;
    wrapper.title = this.title;
    if (this.output !== undefined) wrapper.output = this.output;
    this.outputChanged = false;
  }
}

interface StepView {
  id: string;
  row: Row;
  state: StepProgress;
  kind: StepKind | undefined;
  meter: TransferMeter;
  label: string | undefined;
  lastActivityAt: number | undefined;
  outcome: Deferred<StepOutcome>;
}

interface JobView {
  id: string;
  row: Row;
  started: boolean;
  finished: boolean;
  steps: Map<string, StepView>;
  done: Deferred<void>;
  /** Big batches: the lane showing this job, while it runs. */
  lane: Lane | undefined;
}

/** A big-batch row that shows one running job at a time. */
interface Lane {
  row: Row;
  job: JobView | undefined;
}

/** A Writable over our sink, with the terminal size log-update needs to redraw in place. */
function writableFor(sink: OutputSink): NodeJS.WriteStream {
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      sink.write(chunk.toString());
      callback();
    },
  });
  Object.assign(stream, { isTTY: sink.isTTY, columns: sink.columns !== undefined && sink.columns > 0 ? sink.columns : 80, rows: 40 });
  return stream as unknown as NodeJS.WriteStream;
}

const STATE_ICON: Record<StepProgress, string> = { waiting: '◻', running: '›', done: '✔', skipped: '↓', failed: '✖' };

/** Draws a run with listr2. Feed it events after `tally.observe`; `close` waits for the drawing to end. */
export class TtyView {
  private listr: Listr<unknown, ListrRendererFactory, ListrRendererFactory> | undefined;
  private running: Promise<unknown> | undefined;
  private readonly jobs = new Map<string, JobView>();
  /** Job rows not yet bound to a job id (small runs whose `run:start` had no plan). */
  private readonly unbound: JobView[] = [];
  private readonly lanes: Lane[] = [];
  private readonly frames: FrameScheduler;
  private readonly header: Row;
  private readonly headerDone = deferred<void>();
  private big = false;
  private name = '';
  /**
   * Set at `run:done`: the rows are final. A change to a listr2 task after its renderer ended
   * draws the whole tree again below the last frame, so what comes later (the report's notice)
   * is kept here and written as lines once the last frame is drawn.
   */
  private ended = false;
  private readonly late: string[] = [];

  constructor(private readonly options: TtyViewOptions) {
    // The test renderer records every change; a terminal gets at most one frame per 100 ms.
    this.frames = new FrameScheduler(options.frameMs ?? (options.renderer === 'test' ? 0 : 100));
    this.header = new Row('', this.frames);
  }

  emit(event: TalkEvent, finishedJob: string | undefined): void {
    if (this.ended) {
      if (event.type === 'notice' && (event.level !== 'debug' || this.options.verbose)) this.late.push(noticeText(event));
      return;
    }
    switch (event.type) {
      case 'run:start':
        this.start(event);
        break;
      case 'step:start': {
        const step = this.step(event.job, event.step);
        if (step === undefined) break;
        step.kind = event.kind;
        step.state = 'running';
        step.lastActivityAt = Date.parse(event.ts);
        step.row.setTitle(`${event.step} · ${event.kind}`);
        break;
      }
      case 'step:progress':
        this.progress(event);
        break;
      case 'step:retry': {
        const step = this.step(event.job, event.step);
        step?.row.setOutput(describeRetry(event.reason, event.delayMs, event.attempt));
        break;
      }
      case 'step:done': {
        const step = this.step(event.job, event.step);
        if (step === undefined) break;
        step.state = 'done';
        step.row.setOutput(undefined);
        const title = `${event.step} · ${describeDone(event, this.options.cwd)}`;
        step.row.setTitle(title);
        step.outcome.resolve({ kind: 'done', title });
        break;
      }
      case 'step:skipped': {
        const step = this.step(event.job, event.step);
        if (step === undefined) break;
        if (event.reason === 'interrupted') {
          this.interrupt(step);
          break;
        }
        step.state = 'skipped';
        const reason = `${event.step} · skipped (${event.reason})`;
        step.row.setTitle(reason);
        step.outcome.resolve({ kind: 'skipped', reason });
        break;
      }
      case 'step:failed': {
        const step = this.step(event.job, event.step);
        if (step === undefined) break;
        step.state = 'failed';
        const hint = event.error.hint === undefined ? '' : ` → ${event.error.hint}`;
        const message = `${event.step}: ${event.error.message} (${event.error.code})${hint}`;
        step.row.setTitle(this.big ? message : `${event.step} · failed`);
        step.outcome.resolve({ kind: 'failed', message });
        break;
      }
      case 'notice':
        if (event.level === 'debug' && !this.options.verbose) break;
        this.header.setOutput(noticeText(event));
        break;
      case 'run:done':
        this.finishAll();
        break;
      default:
        return unreachable(event, 'event');
    }
    if (this.big && 'job' in event && event.job !== undefined) {
      const view = this.jobs.get(event.job);
      if (view !== undefined && !view.finished) this.paintLane(view);
    }
    if (finishedJob !== undefined) {
      const view = this.jobs.get(finishedJob);
      if (view !== undefined) {
        view.finished = true;
        view.done.resolve();
        if (this.big) this.releaseLane(view);
      }
    }
    this.updateHeader();
  }

  /** Settles every row and waits until listr2 has drawn its last frame. */
  async close(): Promise<void> {
    this.finishAll();
    if (this.running !== undefined) await this.running;
    if (this.late.length > 0) this.options.out.write(`${this.late.join('\n')}\n`);
    this.late.length = 0;
  }

  private start(event: Extract<TalkEvent, { type: 'run:start' }>): void {
    // A second run:start (watch mode feeding one reporter) adds to the counts only.
    if (this.listr !== undefined) return;
    this.name = event.shard ? `${event.name} (shard ${event.shard.index}/${event.shard.count})` : event.name;
    this.big = event.jobs > BIG_BATCH_JOBS;
    const plan = event.plan ?? [];
    const rows: ListrTask<unknown, ListrRendererFactory, ListrRendererFactory>[] = [];
    for (const declared of plan) this.jobs.set(declared.job, this.newJob(declared.job, declared.steps));
    if (this.big) {
      for (let i = 0; i < Math.min(LANES, event.jobs); i++) {
        // A blank title, not an empty one: listr2 sends output of untitled tasks to the bottom bar.
        const lane: Lane = { row: new Row(' ', this.frames), job: undefined };
        this.lanes.push(lane);
        rows.push({
          title: ' ',
          rendererOptions: { ...this.rowOptions(lane.row), outputBar: 1 },
          task: async (_ctx, wrapper) => {
            lane.row.attach(wrapper);
            await this.headerDone.promise;
            lane.row.setTitle('');
          },
        });
      }
    } else {
      for (const view of this.jobs.values()) rows.push(this.jobTask(view));
      // Without a plan, rows are bound to jobs in the order they first appear.
      for (let i = plan.length; i < event.jobs; i++) {
        const view = this.newJob(undefined, []);
        this.unbound.push(view);
        rows.push(this.jobTask(view));
      }
    }
    const tasks: ListrTask<unknown, ListrRendererFactory, ListrRendererFactory>[] = [
      {
        title: '',
        task: async (_ctx, wrapper) => {
          this.header.attach(wrapper);
          await this.headerDone.promise;
          // The header's mark is the run's: listr2 draws ✔ for a task that returns, so a run
          // that did not succeed ends its header as skipped (interrupted) or failed.
          const status = this.options.tally.status;
          if (status === undefined || status === 'success') return;
          if (status === 'interrupted') {
            wrapper.skip(`${this.header.title} · interrupted`);
            return;
          }
          throw new Error(`${this.header.title} · ${status === 'credits' ? 'out of credits' : 'failed'}`);
        },
        rendererOptions: { outputBar: 3, persistentOutput: true },
      },
      ...rows,
    ];
    const logger = new ListrLogger({ useIcons: true, processOutput: new ProcessOutput(writableFor(this.options.out), writableFor(this.options.out)) });
    this.listr = new Listr(tasks, {
      concurrent: true,
      exitOnError: false,
      // main.ts owns signals: listr2's own handler would exit the process mid-save.
      registerSignalListeners: false,
      renderer: this.options.renderer === 'test' ? TestRenderer : DefaultRenderer,
      rendererOptions: { logger, icon: MARKS, color: MARK_COLORS, collapseSubtasks: true, collapseErrors: false, showErrorMessage: true, timer: PRESET_TIMER, formatOutput: 'truncate' },
      fallbackRenderer: SimpleRenderer,
      fallbackRendererOptions: { logger },
    });
    this.running = this.listr.run().catch(() => undefined);
  }

  private newJob(id: string | undefined, steps: readonly string[]): JobView {
    const view: JobView = {
      id: id ?? '',
      row: new Row(this.big || id === undefined ? '' : `${id} · waiting`, this.frames),
      started: false,
      finished: false,
      steps: new Map(),
      done: deferred<void>(),
      lane: undefined,
    };
    for (const step of steps) view.steps.set(step, this.newStep(step));
    return view;
  }

  private newStep(id: string): StepView {
    return {
      id,
      row: new Row(`${id} · waiting`, this.frames),
      state: 'waiting',
      kind: undefined,
      meter: new TransferMeter(),
      label: undefined,
      lastActivityAt: undefined,
      outcome: deferred<StepOutcome>(),
    };
  }

  private jobTask(view: JobView): ListrTask<unknown, ListrRendererFactory, ListrRendererFactory> {
    return {
      title: view.row.title,
      rendererOptions: this.rowOptions(view.row),
      task: (_ctx, wrapper) => {
        view.row.attach(wrapper);
        if (view.steps.size === 0) return view.done.promise;
        const steps = [...view.steps.values()];
        // An untitled last task (it draws nothing) marks the job once every step has settled,
        // before the job completes: a job with an interrupted step ends as skipped ("↓ … ·
        // interrupted"), its step lines kept; listr2 would draw ✔ and fold them away.
        const mark: ListrTask<unknown, ListrRendererFactory, ListrRendererFactory> = {
          task: async () => {
            const outcomes = await Promise.all(steps.map((step) => step.outcome.promise));
            if (outcomes.some((o) => o.kind === 'interrupted')) wrapper.skip(`${view.row.title} · interrupted`);
          },
        };
        // An interrupted step ends "rolled back" (■), the one state that keeps the lines of
        // the job above it; exitAfterRollback: false keeps that from failing the job.
        return wrapper.newListr([...steps.map((step) => this.stepTask(step)), mark], { concurrent: true, exitOnError: false, exitAfterRollback: false });
      },
    };
  }

  private stepTask(step: StepView): ListrTask<unknown, ListrRendererFactory, ListrRendererFactory> {
    const definition: ListrTask<unknown, ListrRendererFactory, ListrRendererFactory> = {
      title: step.row.title,
      rendererOptions: this.rowOptions(step.row),
      task: async (_ctx, wrapper) => {
        step.row.attach(wrapper);
        const outcome = await step.outcome.promise;
        // The mark changes the moment the task ends: its final title goes with it, not a frame
        // later (a ✔ beside "generating video" for up to a frame otherwise).
        switch (outcome.kind) {
          case 'done':
            step.row.setTitle(outcome.title);
            step.row.apply();
            return;
          case 'skipped':
            wrapper.skip(outcome.reason);
            return;
          case 'interrupted':
            // listr2 rolls back a task that throws and has a rollback: its ■ mark says
            // "stopped here", neither done nor failed.
            definition.rollback = () => {
              step.row.setTitle(outcome.title);
              step.row.apply();
            };
            throw new Error(outcome.title);
          case 'failed':
            step.row.setTitle(`${step.id} · failed`);
            step.row.apply();
            throw new Error(outcome.message);
          default:
            return unreachable(outcome, 'outcome');
        }
      },
    };
    return definition;
  }

  /** A step the run stopped: `export · interrupted (was rendering 14%)` when it was under way. */
  private interrupt(step: StepView): void {
    const doing = step.state === 'running' ? step.row.title.slice(step.id.length + ' · '.length) : '';
    step.state = 'skipped';
    const title = `${step.id} · interrupted${doing ? ` (was ${doing})` : ''}`;
    step.row.setTitle(title);
    step.row.setOutput(undefined);
    step.outcome.resolve({ kind: 'interrupted', title });
  }

  /**
   * Per-row renderer options. `persistentOutput` keeps listr2 from re-creating a row's output
   * buffer (and a listener) on every frame after the row finished; the timer is drawn only on
   * visible rows, since a hidden row's timer alone would bring it back as `✔ [2s]`.
   */
  private rowOptions(row: Row): { persistentOutput: true; timer: typeof PRESET_TIMER } {
    return { persistentOutput: true, timer: { ...PRESET_TIMER, condition: () => row.title.trim() !== '' } };
  }

  /** The view of a job, created or bound on first sight; undefined if a small run is out of rows. */
  private job(id: string): JobView | undefined {
    let view = this.jobs.get(id);
    if (view === undefined) {
      view = this.big ? this.newJob(id, []) : this.unbound.shift();
      if (view === undefined) return undefined;
      view.id = id;
      this.jobs.set(id, view);
    }
    if (!view.started) {
      view.started = true;
      if (!this.big) view.row.setTitle(id);
    }
    return view;
  }

  private step(jobId: string, stepId: string): StepView | undefined {
    const view = this.job(jobId);
    if (view === undefined) return undefined;
    const existing = view.steps.get(stepId);
    if (existing !== undefined) return existing;
    const step = this.newStep(stepId);
    view.steps.set(stepId, step);
    if (this.big) return step;
    // A step listr2 has no row for (planless small run): its activity goes on the job's own row.
    const jobRow = view.row;
    step.row.setTitle = (title: string) => jobRow.setTitle(title === '' ? view.id : `${view.id} › ${title}`);
    step.row.setOutput = (output: string | undefined) => jobRow.setOutput(output);
    return step;
  }

  /** Shows a running job of a big batch on a lane (its own, or a free one). */
  private paintLane(view: JobView): void {
    if (view.lane === undefined) {
      const free = this.lanes.find((lane) => lane.job === undefined);
      if (free === undefined) return;
      free.job = view;
      view.lane = free;
    }
    const lines = [...view.steps.values()]
      .filter((step) => step.state !== 'waiting')
      .map((step) => `${STATE_ICON[step.state]} ${step.row.title}${step.row.output === undefined ? '' : ` — ${step.row.output}`}`);
    view.lane.row.setTitle(view.id);
    view.lane.row.setOutput(lines.join('\n'));
  }

  /** Frees a finished job's lane and gives it to a running job that had none. */
  private releaseLane(view: JobView): void {
    const lane = view.lane;
    if (lane === undefined) return;
    view.lane = undefined;
    lane.job = undefined;
    lane.row.setTitle('');
    lane.row.setOutput(undefined);
    for (const other of this.jobs.values()) {
      if (other.started && !other.finished && other.lane === undefined) {
        this.paintLane(other);
        break;
      }
    }
  }

  private progress(event: Extract<TalkEvent, { type: 'step:progress' }>): void {
    const step = this.step(event.job, event.step);
    if (step === undefined) return;
    const now = Date.parse(event.ts);
    const parts: string[] = [];
    if (isHeartbeatLabel(event.label) && event.bytes === undefined && event.percent === undefined) {
      const quietFor = now - (step.lastActivityAt ?? now);
      if (quietFor < STILL_WORKING_EVERY_MS) return;
      parts.push(`⏳ still working (${formatElapsed(quietFor)})`);
    } else {
      step.lastActivityAt = now;
      if (event.label !== undefined) step.label = event.label;
      if (step.label !== undefined) parts.push(step.label);
      if (event.bytes !== undefined) parts.push(describeTransfer(step.kind, event.bytes, event.total, step.meter.sample(event.ts, event.bytes, event.total)));
      if (event.percent !== undefined) parts.push(`rendering ${Math.floor(event.percent)}%`);
    }
    step.state = 'running';
    step.row.setTitle(`${event.step} · ${parts.join(' · ')}`);
    step.row.setOutput(undefined);
  }

  private updateHeader(): void {
    const counts = this.options.tally.counts();
    const credits = this.options.tally.totalCredits();
    const unseen = this.big ? counts.running - this.lanes.filter((l) => l.job !== undefined).length : 0;
    const more = unseen > 0 ? ` (${unseen} not shown)` : '';
    this.header.setTitle(`${this.name} · ${describeCounts(counts)}${more}${credits > 0 ? ` · ${formatCredits(credits)}` : ''}`);
  }

  private finishAll(): void {
    this.ended = true;
    this.frames.immediate();
    // Planless rows carried their steps' activity in the title; at the end they read as the job.
    for (const view of this.jobs.values()) if (!this.big && view.started && view.row.title.startsWith(`${view.id} › `)) view.row.setTitle(view.id);
    for (const view of [...this.jobs.values(), ...this.unbound]) {
      for (const step of view.steps.values()) {
        if (this.options.tally.status === 'interrupted' && step.state === 'running') this.interrupt(step);
        else step.outcome.resolve({ kind: 'skipped', reason: `${step.id} · not run` });
      }
      view.done.resolve();
    }
    for (const lane of this.lanes) {
      lane.job = undefined;
      lane.row.setTitle('');
      lane.row.setOutput(undefined);
    }
    this.headerDone.resolve();
  }
}
