import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { UsageError, WorkflowInvalidError } from '../../../src/core/errors.js';
import { estimateCredits, formatPlan, orderSteps, planJobForItem, planRun } from '../../../src/plan/index.js';
import { loadWorkflow, type Workflow } from '../../../src/workflow/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const examples = path.join(root, 'examples');

async function example(name: string): Promise<Workflow> {
  const { workflow, diagnostics } = await loadWorkflow(path.join(examples, name), { cwd: root, env: {} });
  expect(diagnostics).toEqual([]);
  return workflow!;
}

describe('planRun', () => {
  it('plans the short form: absolute paths, resolved text, classified instructions', async () => {
    const plan = planRun(await example('hello.yaml'));
    expect(plan).toMatchObject({
      workflowPath: path.join(examples, 'hello.yaml'),
      workflowDir: examples,
      name: 'hello-avatar',
      backend: { kind: 'local' },
      concurrency: 4,
      limits: { uploads: 4, renders: 4 },
    });
    expect(plan.budget).toBeUndefined();
    const [job] = plan.jobs;
    expect(plan.jobs).toHaveLength(1);
    expect(job?.id).toBe('main');
    expect(job?.steps.map((s) => s.id)).toEqual(['upload-portrait', 'upload-voice', 'instruction-1', 'export']);
    expect(job?.steps[0]).toMatchObject({ kind: 'upload', inputs: [{ name: 'portrait', path: path.join(examples, 'assets/portrait.jpg') }], retries: 2, timeoutMs: 1_800_000 });
    expect(job?.steps[2]).toMatchObject({ kind: 'instruction', turnClass: 'generation', estimatedCredits: 100 });
    expect(job?.steps[3]).toMatchObject({ kind: 'export', output: path.join(examples, 'out/hello-avatar.mp4'), aspect: '9:16', quality: 'high', resolution: '1080p' });
    expect(job?.steps[3]?.location).toMatchObject({ file: 'examples/hello.yaml', line: 12 });
    expect(estimateCredits(plan)).toEqual({ perJob: { main: 100 }, total: 100 });
  });

  it('plans one job per foreach item with item expressions resolved', async () => {
    const plan = planRun(await example('batch.yaml'));
    expect(plan.jobs.map((j) => j.id)).toEqual(['ada', 'grace']);
    const grace = plan.jobs[1]!;
    expect(grace.item).toEqual({ portrait: path.join(examples, 'assets/faces/grace.jpg'), voice: path.join(examples, 'assets/voices/grace.mp3') });
    expect(grace.steps.find((s) => s.id === 'instruction-2')).toMatchObject({ text: 'Add a title "grace" for the first 2 seconds', turnClass: 'edit', estimatedCredits: 50 });
    expect(grace.steps.find((s) => s.kind === 'export')).toMatchObject({ output: path.join(examples, 'out/batch/grace.mp4') });
    expect(estimateCredits(plan)).toEqual({ perJob: { ada: 150, grace: 150 }, total: 300 });
  });

  it('orders the long form topologically and applies overrides', async () => {
    const workflow = await example('graph.yaml');
    const plan = planRun(workflow, { backend: 'http://127.0.0.1:9/', concurrency: 3 });
    expect(plan.backend).toEqual({ kind: 'url', url: 'http://127.0.0.1:9' });
    expect(plan.concurrency).toBe(3);
    expect(plan.limits).toEqual({ uploads: 3, renders: 3 });
    expect(plan.budget).toEqual({ credits: 200 });
    const steps = plan.jobs[0]!.steps;
    expect(steps.map((s) => s.id)).toEqual(['enough-credits', 'upload-portrait', 'upload-voice', 'animate', 'headline', 'landscape', 'vertical']);
    expect(steps.find((s) => s.id === 'animate')).toMatchObject({ timeoutMs: 15 * 60_000, needs: ['upload-portrait', 'upload-voice'] });
    expect(steps.find((s) => s.id === 'headline')).toMatchObject({ timeoutMs: 20 * 60_000, text: 'Add a title "Meet the new talk" for the first 3 seconds' });
    expect(steps[0]).toMatchObject({ kind: 'credits', min: 150 });
    expect(() => planRun(workflow, { backend: 'ftp://x' })).toThrow(UsageError);
  });

  it('has no jobs for a watch-folder workflow', async () => {
    expect(planRun(await example('watch.yaml')).jobs).toEqual([]);
  });
});

describe('orderSteps', () => {
  it('puts needs first and keeps written order among ready steps', () => {
    const steps = [
      { id: 'export', needs: ['b'] },
      { id: 'c', needs: [] },
      { id: 'b', needs: ['a'] },
      { id: 'a', needs: [] },
    ];
    expect(orderSteps(steps).map((s) => s.id)).toEqual(['c', 'a', 'b', 'export']);
  });
});

describe('planJobForItem', () => {
  it('plans a watch bundle: item files feed item.*, output may be anywhere', async () => {
    const workflow = await example('watch.yaml');
    const job = planJobForItem(workflow, {
      id: 'maria',
      files: { portrait: '/inbox/maria.png', voice: '/inbox/maria.wav' },
      output: '/inbox/out/maria.mp4',
    });
    expect(job.id).toBe('maria');
    expect(job.item).toEqual({ portrait: '/inbox/maria.png', voice: '/inbox/maria.wav' });
    expect(job.steps.map((s) => s.id)).toEqual(['upload-portrait', 'upload-voice', 'instruction-1', 'export']);
    expect(job.steps[0]).toMatchObject({ inputs: [{ name: 'portrait', path: '/inbox/maria.png' }] });
    expect(job.steps[3]).toMatchObject({ output: '/inbox/out/maria.mp4' });
  });

  it('uses the workflow output template when no output is given', async () => {
    const workflow = await example('watch.yaml');
    const job = planJobForItem(workflow, { id: 'x', files: { portrait: '/inbox/x.jpg', voice: '/inbox/x.mp3' } });
    expect(job.steps.find((s) => s.kind === 'export')).toMatchObject({ output: path.join(examples, 'out/x.mp4') });
  });

  it('replaces the instructions of a short-form workflow', async () => {
    const workflow = await example('watch.yaml');
    const job = planJobForItem(workflow, {
      id: 'x',
      files: { portrait: '/inbox/x.jpg', voice: '/inbox/x.mp3' },
      instructions: ['Make this photo talk', 'Add background music'],
    });
    expect(job.steps.map((s) => [s.id, s.needs])).toEqual([
      ['upload-portrait', []],
      ['upload-voice', []],
      ['instruction-1', ['upload-portrait', 'upload-voice']],
      ['instruction-2', ['upload-portrait', 'upload-voice', 'instruction-1']],
      ['export', ['instruction-2']],
    ]);
    expect(estimateCredits({ ...planRun(workflow), jobs: [job] }).total).toBe(150);
  });

  it('refuses an item without the files the templates need, and instructions for the long form', async () => {
    const workflow = await example('watch.yaml');
    expect(() => planJobForItem(workflow, { id: 'x', files: { portrait: '/inbox/x.jpg' } })).toThrow(WorkflowInvalidError);
    const graph = await example('graph.yaml');
    expect(() => planJobForItem(graph, { id: 'x', files: {}, instructions: ['hi'] })).toThrow(UsageError);
  });
});

describe('formatPlan', () => {
  it('prints jobs, steps in order with needs, and the estimate', async () => {
    const text = formatPlan(planRun(await example('batch.yaml')), { cwd: root });
    expect(text).toContain('plan team-intros (examples/batch.yaml)');
    expect(text).toContain('backend local · language en · concurrency 2 · uploads 2 · renders 2');
    expect(text).toContain('job ada (portrait: examples/assets/faces/ada.jpg, voice: examples/assets/voices/ada.mp3)');
    expect(text).toMatch(/ {2}4 {2}instruction-2 +upload-portrait, upload-voice, instruction-1 {2}"Add a title "ada" for the first 2 seconds" \(edit\) +~50/);
    expect(text).toMatch(/5 {2}export +instruction-2 +mp4 medium 720p 9:16 → examples\/out\/batch\/ada\.mp4/);
    expect(text).toContain('credits: about 300 (ada 150, grace 150)');
  });

  it('adds an annotation column when asked, and warns when the estimate exceeds the budget', async () => {
    const plan = planRun(await example('graph.yaml'));
    const text = formatPlan({ ...plan, budget: { credits: 120 } }, { annotate: (job, step) => (step === 'animate' ? `skip (done in ${job})` : undefined) });
    expect(text).toMatch(/animate .*~100 +skip \(done in main\)\n/);
    expect(text).toContain('budget: the estimate exceeds the budget of 120');
  });
});
