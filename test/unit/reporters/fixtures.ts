/**
 * Synthetic event sequences and capturing sinks for the reporter unit tests. Times come from a
 * fixed clock the test advances, so rates, ETAs and "still working" are exact.
 */
import { stamp, type TalkEvent, type TalkEventInit } from '../../../src/core/events.js';
import type { OutputSink } from '../../../src/core/redact.js';

/** A sink that keeps what was written. */
export interface CapturedSink extends OutputSink {
  text(): string;
  chunks: string[];
}

export function captureSink(isTTY = false, columns: number | undefined = undefined): CapturedSink {
  const chunks: string[] = [];
  return { chunks, write: (t: string) => void chunks.push(t), isTTY, columns, text: () => chunks.join('') };
}

/** A clock that starts at 09:00:00 UTC and moves only when told. */
export class Clock {
  now = Date.parse('2026-11-25T09:00:00.000Z');
  at(init: TalkEventInit, advanceMs = 0): TalkEvent {
    this.now += advanceMs;
    return stamp(init, () => new Date(this.now));
  }
}

/** The steps of a short-form workflow job. */
export const STEPS = ['portrait', 'voice', 'talk', 'export'] as const;

/** A whole successful job: two uploads, one instruction, one export. */
export function successfulJob(clock: Clock, job: string, output = `out/${job}.mp4`): TalkEvent[] {
  return [
    clock.at({ type: 'step:start', job, step: 'portrait', kind: 'upload' }, 100),
    clock.at({ type: 'step:progress', job, step: 'portrait', bytes: 0, total: 1_000_000 }),
    clock.at({ type: 'step:progress', job, step: 'portrait', bytes: 500_000, total: 1_000_000 }, 1000),
    clock.at({ type: 'step:progress', job, step: 'portrait', bytes: 1_000_000, total: 1_000_000 }, 1000),
    clock.at({ type: 'step:done', job, step: 'portrait', durationMs: 2000 }),
    clock.at({ type: 'step:skipped', job, step: 'voice', reason: 'resumed' }),
    clock.at({ type: 'step:start', job, step: 'talk', kind: 'instruction' }),
    clock.at({ type: 'step:progress', job, step: 'talk', label: 'generating video' }, 500),
    clock.at({ type: 'step:done', job, step: 'talk', durationMs: 5000, creditsUsed: 100, reply: 'Done! Your talking video is ready.' }, 4500),
    clock.at({ type: 'step:start', job, step: 'export', kind: 'export' }),
    clock.at({ type: 'step:progress', job, step: 'export', percent: 50 }, 1000),
    clock.at({ type: 'step:done', job, step: 'export', durationMs: 2000, output }, 1000),
  ];
}

export function runStart(clock: Clock, jobs: string[], withPlan = true): TalkEvent {
  return clock.at({
    type: 'run:start',
    workflow: 'hello.yaml',
    name: 'hello',
    backend: 'local',
    jobs: jobs.length,
    resumed: false,
    ...(withPlan ? { plan: jobs.map((job) => ({ job, steps: [...STEPS] })) } : {}),
  });
}
