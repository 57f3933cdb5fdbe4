import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../../src/core/diagnostics.js';
import type { TalkEvent } from '../../../src/core/events.js';
import { capAnnotations, escapeProperty, formatAnnotation, formatDiagnosticAnnotations } from '../../../src/reporters/github.js';
import { createReporter } from '../../../src/reporters/index.js';
import { Clock, STEPS, captureSink, runStart, successfulJob } from './fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'talk-gh-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ghReporter(name: 'plain' | 'json') {
  const stdout = captureSink();
  const stderr = captureSink();
  const summary = join(dir, 'summary.md');
  const reporter = createReporter({
    name,
    stdout,
    stderr,
    quiet: false,
    verbose: false,
    color: false,
    env: { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary },
    workflowFile: 'flows/batch.yaml',
    stepLocations: (_job, step) => ({ line: 10 + STEPS.indexOf(step as (typeof STEPS)[number]), col: 5 }),
  });
  return { reporter, stdout, stderr, summary };
}

/** Two jobs whose events interleave, b failing at export. */
function interleaved(clock: Clock): TalkEvent[] {
  const a = successfulJob(clock, 'alice');
  const b = successfulJob(clock, 'bob').slice(0, -1);
  b.push(clock.at({ type: 'step:failed', job: 'bob', step: 'export', error: { code: 'backend', message: 'render failed: encoder crashed' } }));
  const events: TalkEvent[] = [runStart(clock, ['alice', 'bob'])];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (b[i]) events.push(b[i]!);
    if (a[i]) events.push(a[i]!);
  }
  events.push(clock.at({ type: 'run:done', status: 'failed', outputs: [{ job: 'alice', step: 'export', path: 'out/alice.mp4' }], creditsUsed: 200, durationMs: 9000 }));
  return events;
}

describe('GitHub Actions output', () => {
  it('folds each job into one ::group:: even when jobs interleave', async () => {
    const { reporter, stdout } = ghReporter('plain');
    for (const event of interleaved(new Clock())) reporter.emit(event);
    await reporter.close();
    const lines = stdout.text().split('\n');
    const markers = lines.filter((l) => l.startsWith('::group::') || l === '::endgroup::');
    expect(markers).toEqual(['::group::job bob', '::endgroup::', '::group::job alice', '::endgroup::']);
    // Inside each group only that job's lines.
    const open = lines.indexOf('::group::job alice');
    const close = lines.indexOf('::endgroup::', open);
    const inside = lines.slice(open + 1, close);
    expect(inside.length).toBe(successfulJob(new Clock(), 'x').length);
    expect(inside.every((l) => / alice /.test(l))).toBe(true);
  });

  it('annotates a failed step on its line of the workflow, and writes the step summary', async () => {
    const { reporter, stdout, summary } = ghReporter('plain');
    for (const event of interleaved(new Clock())) reporter.emit(event);
    await reporter.close();
    const errors = stdout.text().split('\n').filter((l) => l.startsWith('::error'));
    expect(errors).toEqual([
      '::error file=flows/batch.yaml,line=13,col=5,title=talk%3A step export failed (job bob)::render failed: encoder crashed (backend). Next: resume with `talk run flows/batch.yaml`',
    ]);
    const markdown = await readFile(summary, 'utf8');
    expect(markdown).toContain('### ❌ talk: hello — failed');
    expect(markdown).toContain('| job | status | output | duration | credits |');
    expect(markdown).toContain('| alice | success | `out/alice.mp4` |');
    expect(markdown).toMatch(/\| bob \| failed \| {2}\| [\d.]+ s \| 100 \|/);
    expect(markdown).toContain('- **bob** / `export`: render failed: encoder crashed (`backend`) — resume with `talk run flows/batch.yaml`');
  });

  it('json mode keeps stdout pure NDJSON and puts annotations on stderr', async () => {
    const { reporter, stdout, stderr } = ghReporter('json');
    const events = interleaved(new Clock());
    for (const event of events) reporter.emit(event);
    await reporter.close();
    const lines = stdout.text().trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(events);
    expect(stderr.text()).toMatch(/^::error file=flows\/batch.yaml,line=13,col=5,/);
  });

  it('caps annotations at GitHub limits, most frequent failures first, and says how many more', async () => {
    const { reporter, stdout } = ghReporter('plain');
    const clock = new Clock();
    const jobs = Array.from({ length: 40 }, (_, i) => `job${i}`);
    reporter.emit(runStart(clock, jobs));
    jobs.forEach((job, i) => {
      // 15 jobs share one failure; 25 fail each in their own way.
      const message = i < 15 ? 'rate limited twice' : `distinct failure ${i}`;
      reporter.emit(clock.at({ type: 'step:start', job, step: 'talk', kind: 'instruction' }));
      reporter.emit(clock.at({ type: 'step:failed', job, step: 'talk', error: { code: 'backend', message } }));
    });
    for (let i = 0; i < 12; i++) reporter.emit(clock.at({ type: 'notice', level: 'warn', message: `warning ${i}` }));
    reporter.emit(clock.at({ type: 'run:done', status: 'failed', outputs: [], creditsUsed: 0, durationMs: 1 }));
    await reporter.close();
    const lines = stdout.text().split('\n');
    const errors = lines.filter((l) => l.startsWith('::error'));
    const warnings = lines.filter((l) => l.startsWith('::warning'));
    expect(errors).toHaveLength(10);
    expect(warnings).toHaveLength(10);
    expect(errors[0]).toContain('title=talk%3A step talk failed (15 jobs%3A job0%2C job1 and 13 more)::rate limited twice');
    expect(errors[9]).toBe('::error title=talk%3A 17 more errors::17 more errors are not annotated here (GitHub shows 10 per step); see the job summary and the log for all of them.');
    expect(warnings[9]).toContain('3 more warnings');
  });

  it('formats validation diagnostics as annotations in source order within the caps', () => {
    const diagnostics: Diagnostic[] = Array.from({ length: 12 }, (_, i) => ({
      file: 'w.yaml',
      line: 12 - i,
      col: 3,
      severity: 'error' as const,
      message: `bad key, number ${12 - i}`,
      ...(i === 11 ? { hint: 'remove it' } : {}),
    }));
    diagnostics.push({ file: 'w.yaml', line: 2, col: 1, severity: 'warning', message: 'unused var' });
    const lines = formatDiagnosticAnnotations(diagnostics).trimEnd().split('\n');
    expect(lines[0]).toBe('::error file=w.yaml,line=1,col=3,title=talk validate::bad key, number 1. remove it');
    expect(lines[8]).toBe('::error file=w.yaml,line=9,col=3,title=talk validate::bad key, number 9');
    expect(lines[9]).toContain('3 more errors are not annotated here');
    expect(lines[10]).toBe('::warning file=w.yaml,line=2,col=1,title=talk validate::unused var');
    expect(lines).toHaveLength(11);
  });

  it('escapes workflow-command data and properties', () => {
    expect(escapeProperty('a:b,c%d\ne')).toBe('a%3Ab%2Cc%25d%0Ae');
    expect(formatAnnotation({ level: 'warning', message: '50% done\r\nnext' })).toBe('::warning::50%25 done%0D%0Anext\n');
    expect(capAnnotations([{ level: 'error', message: 'x' }], 'see log')).toEqual([{ level: 'error', message: 'x' }]);
  });
});

describe('diagnosticAnnotations', () => {
  it('is empty outside GitHub Actions and annotates inside', async () => {
    const { diagnosticAnnotations } = await import('../../../src/reporters/index.js');
    const d: Diagnostic[] = [{ file: 'w.yaml', line: 3, col: 7, severity: 'error', message: 'unknown key `exprot`', hint: 'did you mean `export`?' }];
    expect(diagnosticAnnotations(d, {})).toBe('');
    expect(diagnosticAnnotations(d, { GITHUB_ACTIONS: 'true' })).toBe('::error file=w.yaml,line=3,col=7,title=talk validate::unknown key `exprot`. did you mean `export`?\n');
  });
});
