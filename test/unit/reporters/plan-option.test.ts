import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planRun } from '../../../src/plan/index.js';
import { createReporter, planListing, stepLocatorFor } from '../../../src/reporters/index.js';
import { loadWorkflow } from '../../../src/workflow/index.js';
import { REPO_ROOT } from '../../helpers/cli.js';
import { Clock, captureSink } from './fixtures.js';

async function helloPlan() {
  const { workflow, diagnostics } = await loadWorkflow(join(REPO_ROOT, 'examples', 'hello.yaml'), { cwd: REPO_ROOT, env: {} });
  if (workflow === undefined) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return planRun(workflow, {});
}

describe('createReporter with the plan', () => {
  it('places annotations on each step’s line, finishes jobs without a listing in run:start, shows outputs relative to cwd', async () => {
    const plan = await helloPlan();
    const listing = planListing(plan);
    expect(listing).toEqual([{ job: 'main', steps: plan.jobs[0]!.steps.map((s) => s.id) }]);
    const locate = stepLocatorFor(plan);
    const exportStep = plan.jobs[0]!.steps.find((s) => s.kind === 'export')!;
    expect(locate('main', exportStep.id)).toEqual({ line: exportStep.location!.line, col: exportStep.location!.col });
    expect(exportStep.location!.line).toBeGreaterThan(1);

    const clock = new Clock();
    const stdout = captureSink();
    const reporter = createReporter({
      name: 'plain',
      stdout,
      stderr: captureSink(),
      quiet: false,
      verbose: false,
      color: false,
      env: { GITHUB_ACTIONS: 'true' },
      workflowFile: 'examples/hello.yaml',
      plan,
      cwd: REPO_ROOT,
    });
    // The engine's run:start without `plan`: the reporter fills it in from the plan it was given.
    reporter.emit(clock.at({ type: 'run:start', workflow: plan.workflowPath, name: plan.name, backend: 'local', jobs: 1, resumed: false }));
    const steps = plan.jobs[0]!.steps;
    for (const step of steps) {
      if (step.kind === 'export') {
        reporter.emit(clock.at({ type: 'step:failed', job: 'main', step: step.id, error: { code: 'backend', message: 'render failed' } }));
      } else {
        reporter.emit(clock.at({ type: 'step:done', job: 'main', step: step.id, durationMs: 5 }));
      }
    }
    // The job closed its group as soon as its last step settled, before run:done.
    expect(stdout.text().trimEnd().endsWith('::endgroup::')).toBe(true);
    reporter.emit(clock.at({ type: 'run:done', status: 'failed', outputs: [{ job: 'main', step: 'export', path: join(REPO_ROOT, 'examples', 'out', 'x.mp4') }], creditsUsed: 0, durationMs: 5 }));
    await reporter.close();
    const text = stdout.text();
    expect(text).toContain(`::error file=examples/hello.yaml,line=${exportStep.location!.line},col=${exportStep.location!.col},title=talk%3A step ${exportStep.id} failed::render failed (backend).`);
    expect(text).toContain('  ✖ main  examples/out/x.mp4');
  });
});
