import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TalkEvent } from '../../../src/core/events.js';
import { createReporter, type ReporterChoice } from '../../../src/reporters/index.js';
import { Clock, captureSink, runStart, successfulJob } from './fixtures.js';

const TOKEN = 'nmv_usr_4f9a2c7e1b3d5f6a8c0e2b4d';
const CUSTOM = 'plain-secret-value-without-prefix';

/** A run whose events carry secrets everywhere a careless engine could put them. */
function leakyRun(clock: Clock): TalkEvent[] {
  return [
    runStart(clock, ['main']),
    clock.at({ type: 'notice', level: 'debug', message: `POST auth 200 4 ms Authorization: Bearer ${TOKEN}` }),
    clock.at({ type: 'notice', level: 'debug', message: `headers {"authorization":"Bearer ${CUSTOM}"}` }),
    clock.at({ type: 'step:start', job: 'main', step: 'talk', kind: 'instruction' }),
    clock.at({ type: 'step:retry', job: 'main', step: 'talk', attempt: 2, reason: `token ${TOKEN} expired (1001)`, delayMs: 0 }),
    clock.at({ type: 'notice', level: 'warn', message: `renewed; old token was ${CUSTOM}` }),
    clock.at({ type: 'step:failed', job: 'main', step: 'talk', error: { code: 'backend', message: `unauthorized for ${TOKEN}`, hint: `replace NEMO_TOKEN (${CUSTOM})` } }),
    clock.at({ type: 'run:done', status: 'failed', outputs: [], creditsUsed: 0, durationMs: 5 }),
  ];
}

describe('json reporter', () => {
  it('writes exactly one JSON object per event and nothing else on stdout', async () => {
    const clock = new Clock();
    const events = [runStart(clock, ['main']), ...successfulJob(clock, 'main'), clock.at({ type: 'run:done', status: 'success', outputs: [], creditsUsed: 100, durationMs: 9 })];
    const stdout = captureSink();
    const stderr = captureSink();
    const reporter = createReporter({ name: 'json', stdout, stderr, quiet: false, verbose: false, color: true, env: {} });
    for (const event of events) reporter.emit(event);
    await reporter.close();
    const lines = stdout.text().split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(events.length);
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(events);
    expect(stderr.text()).toBe('');
  });

  it('auto picks plain when stdout is not a terminal', async () => {
    const clock = new Clock();
    const piped = captureSink(false);
    const reporter = createReporter({ name: 'auto', stdout: piped, stderr: captureSink(), quiet: false, verbose: false, color: true, env: {} });
    reporter.emit(runStart(clock, ['main']));
    await reporter.close();
    expect(piped.text().startsWith('09:00:00 - - starting hello (hello.yaml) on local: 1 job\n')).toBe(true);
  });
});

describe('redaction', () => {
  for (const name of ['plain', 'json', 'tty'] as const satisfies readonly ReporterChoice[]) {
    for (const verbose of [false, true]) {
      it(`${name}${verbose ? ' --verbose' : ''}: no token in stdout, stderr or the step summary`, async () => {
        const dir = await mkdtemp(join(tmpdir(), 'talk-redact-'));
        try {
          const stdout = captureSink();
          const stderr = captureSink();
          const summary = join(dir, 'summary.md');
          const reporter = createReporter({
            name,
            stdout,
            stderr,
            quiet: false,
            verbose,
            color: false,
            env: { NEMO_TOKEN: CUSTOM, GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary },
            workflowFile: 'w.yaml',
            ttyRenderer: 'test',
          });
          for (const event of leakyRun(new Clock())) reporter.emit(event);
          await reporter.close();
          const everything = stdout.text() + stderr.text() + (await readFile(summary, 'utf8'));
          expect(everything).toContain('[redacted]');
          expect(everything).not.toContain(TOKEN);
          expect(everything).not.toContain(CUSTOM);
          expect(everything).not.toContain('nmv_usr_');
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  }
});
