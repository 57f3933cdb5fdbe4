import { describe, expect, it } from 'vitest';
import { createReporter } from '../../../src/reporters/index.js';
import { Clock, captureSink, runStart, successfulJob } from './fixtures.js';

function plainReporter(overrides: { quiet?: boolean; verbose?: boolean; env?: Record<string, string>; resumeCommand?: string } = {}) {
  const stdout = captureSink();
  const stderr = captureSink();
  const reporter = createReporter({
    name: 'plain',
    stdout,
    stderr,
    quiet: overrides.quiet ?? false,
    verbose: overrides.verbose ?? false,
    color: true,
    env: overrides.env ?? {},
    workflowFile: 'hello.yaml',
    resumeCommand: overrides.resumeCommand,
  });
  return { reporter, stdout, stderr };
}

describe('plain reporter', () => {
  it('prints one line per event, time job step message, and a summary', async () => {
    const clock = new Clock();
    const { reporter, stdout, stderr } = plainReporter();
    reporter.emit(runStart(clock, ['main']));
    for (const event of successfulJob(clock, 'main')) reporter.emit(event);
    reporter.emit(clock.at({ type: 'run:done', status: 'success', outputs: [{ job: 'main', step: 'export', path: 'out/main.mp4' }], creditsUsed: 100, durationMs: 9100 }));
    await reporter.close();
    expect(stdout.text().split('\n')).toEqual([
      '09:00:00 - - starting hello (hello.yaml) on local: 1 job',
      '09:00:00 main portrait start upload',
      '09:00:00 main portrait uploading 0 B / 1.0 MB (0%)',
      '09:00:01 main portrait uploading 500 KB / 1.0 MB (50%) · 500 KB/s · ETA 1 s',
      '09:00:02 main portrait uploading 1.0 MB / 1.0 MB (100%) · 500 KB/s',
      '09:00:02 main portrait done in 2 s',
      '09:00:02 main voice skipped (resumed)',
      '09:00:02 main talk start instruction',
      '09:00:02 main talk generating video',
      '09:00:07 main talk done in 5 s · 100 credits · "Done! Your talking video is ready."',
      '09:00:07 main export start export',
      '09:00:08 main export rendering 50%',
      '09:00:09 main export done in 2 s → out/main.mp4',
      '09:00:09 - - run success in 9.1 s · 100 credits',
      '',
      'Summary: success · 1 job · 9.1 s · 100 credits',
      '  ✔ main  out/main.mp4  9 s  100 credits',
      '',
    ]);
    // Plain output never carries ANSI, even with color on; nothing goes to stderr on success.
    expect(stdout.text()).not.toContain('\u001b[');
    expect(stderr.text()).toBe('');
  });

  it('throttles progress to tenths and says "still working" every 2 minutes of heartbeats', async () => {
    const clock = new Clock();
    const { reporter, stdout } = plainReporter();
    reporter.emit(runStart(clock, ['main']));
    reporter.emit(clock.at({ type: 'step:start', job: 'main', step: 'export', kind: 'export' }));
    for (let p = 0; p <= 100; p += 2) reporter.emit(clock.at({ type: 'step:progress', job: 'main', step: 'export', percent: p }, 100));
    reporter.emit(clock.at({ type: 'step:start', job: 'main', step: 'talk', kind: 'instruction' }));
    reporter.emit(clock.at({ type: 'step:progress', job: 'main', step: 'talk', label: 'generating video' }));
    // Heartbeats every 15 s for 5 minutes: two "still working" lines (at 2 and 4 minutes).
    for (let i = 0; i < 20; i++) reporter.emit(clock.at({ type: 'step:progress', job: 'main', step: 'talk', label: 'still working' }, 15_000));
    await reporter.close();
    const lines = stdout.text().split('\n');
    const render = lines.filter((l) => l.includes('rendering'));
    expect(render.map((l) => l.replace(/^.* rendering /, ''))).toEqual(['0%', '10%', '20%', '30%', '40%', '50%', '60%', '70%', '80%', '90%', '100%']);
    const still = lines.filter((l) => l.includes('still working'));
    expect(still).toEqual([
      '09:02:05 main talk ⏳ still working (2 min since the last activity)',
      '09:04:05 main talk ⏳ still working (4 min since the last activity)',
    ]);
  });

  it('shows retries with their reason, failures with the next action', async () => {
    const clock = new Clock();
    const { reporter, stdout } = plainReporter();
    reporter.emit(runStart(clock, ['main']));
    reporter.emit(clock.at({ type: 'step:start', job: 'main', step: 'talk', kind: 'instruction' }));
    reporter.emit(clock.at({ type: 'step:retry', job: 'main', step: 'talk', attempt: 2, reason: 'rate limited', delayMs: 30_000 }));
    reporter.emit(clock.at({ type: 'step:failed', job: 'main', step: 'talk', error: { code: 'credits', message: 'out of credits (2001)' } }, 30_000));
    reporter.emit(clock.at({ type: 'run:done', status: 'credits', outputs: [], creditsUsed: 0, durationMs: 30_000 }));
    await reporter.close();
    const text = stdout.text();
    expect(text).toContain('09:00:00 main talk rate limited, retrying in 30 s (attempt 2)\n');
    expect(text).toContain('09:00:30 main talk failed: out of credits (2001) (credits)\n');
    expect(text).toContain('  ✖ main  failed  30 s\n      step talk: out of credits (2001) (credits)\n      → top up credits (or register to keep anonymous work), then resume with `talk run hello.yaml`\n');
  });

  it('quotes the command that continues the work: a watcher\'s own, not `talk run`', async () => {
    const clock = new Clock();
    const { reporter, stdout } = plainReporter({ resumeCommand: "talk watch 'my inbox' --workflow watch.yaml" });
    reporter.emit(runStart(clock, ['maria']));
    reporter.emit(clock.at({ type: 'step:start', job: 'maria', step: 'export', kind: 'export' }));
    reporter.emit(clock.at({ type: 'step:failed', job: 'maria', step: 'export', error: { code: 'backend', message: 'render failed' } }));
    reporter.emit(clock.at({ type: 'run:done', status: 'interrupted', outputs: [], creditsUsed: 0, durationMs: 1000 }));
    await reporter.close();
    const text = stdout.text();
    expect(text).toContain("      → resume with `talk watch 'my inbox' --workflow watch.yaml`\n");
    expect(text).toContain("  → resume with `talk watch 'my inbox' --workflow watch.yaml`\n");
    expect(text).not.toContain('talk run');
  });

  it('--quiet prints only errors and the summary; --verbose adds request lines', async () => {
    const clock = new Clock();
    const events = [
      runStart(clock, ['main']),
      clock.at({ type: 'notice', level: 'debug', message: 'POST session 200 12 ms' }),
      clock.at({ type: 'step:start', job: 'main', step: 'talk', kind: 'instruction' }),
      clock.at({ type: 'notice', level: 'warn', message: 'session expired (1002): a new session was started' }),
      clock.at({ type: 'step:failed', job: 'main', step: 'talk', error: { code: 'backend', message: 'the backend stopped answering' } }),
      clock.at({ type: 'run:done', status: 'failed', outputs: [], creditsUsed: 0, durationMs: 10 }),
    ];
    const quiet = plainReporter({ quiet: true, verbose: true });
    const normal = plainReporter();
    const verbose = plainReporter({ verbose: true });
    for (const { reporter } of [quiet, normal, verbose]) {
      for (const event of events) reporter.emit(event);
      await reporter.close();
    }
    expect(quiet.stdout.text().split('\n').filter((l) => /^\d\d:/.test(l))).toEqual(['09:00:00 main talk failed: the backend stopped answering (backend)']);
    expect(quiet.stdout.text()).toContain('Summary: failed');
    expect(normal.stdout.text()).not.toContain('POST session');
    expect(normal.stdout.text()).toContain('09:00:00 - - warn: session expired (1002): a new session was started\n');
    expect(verbose.stdout.text()).toContain('09:00:00 - - debug: POST session 200 12 ms\n');
  });
});
