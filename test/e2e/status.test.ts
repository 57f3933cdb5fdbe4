// `talk status` on a big run (built CLI, one `talk serve`): the run is a count of its jobs, and
// the jobs that need a look are listed — not every done one; `--all` lists every job. The same
// for `--merge`.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { batchWorkspace, startServe, type Served } from '../helpers/serve.js';

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}, 120_000);

// More than the 20 jobs `talk status` lists in full.
const ITEMS = 22;
let served: Served;
let cwd: string;

beforeAll(async () => {
  // The first render fails for good (a 400 is not retried): one job of the batch fails.
  served = await startServe({ env: { TALK_LOCAL_ANONYMOUS_CREDITS: String(100 * ITEMS) }, args: ['--fault', 'render:status=400:x1'] });
  cwd = await batchWorkspace(ITEMS, { concurrency: 8 });
}, 60_000);

afterAll(async () => {
  await served.stop();
  await rm(cwd, { recursive: true, force: true });
});

describe('talk status (built CLI)', () => {
  it('a big run: its jobs counted, the failed one listed with its steps, the done ones only counted; --all lists every one', async () => {
    const run = await runCli(['run', 'batch.yaml', '--backend', served.url, '--json', '--no-report'], { cwd, env: { NEMO_CLIENT_ID: 'e2e-status' }, timeoutMs: 300_000 });
    expect(run.code, run.stderr).toBe(1);
    const failed = [...new Set(run.events.flatMap((e) => (e.type === 'step:failed' ? [e.job] : [])))];
    expect(failed).toHaveLength(1);

    const text = await runCli(['status', 'batch.yaml'], { cwd });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`  ${ITEMS} jobs: 1 failed, ${ITEMS - 1} done\n`);
    expect(text.stdout).toContain(`  job ${failed[0]}: failed`);
    expect(text.stdout).toMatch(/ {4}export: export · failed · .*error: /);
    expect(text.stdout.match(/^ {2}job /gm)).toHaveLength(1);
    expect(text.stdout).toContain(`  ${ITEMS - 1} jobs not listed (${ITEMS - 1} done); every one: talk status batch.yaml --all\n`);

    const every = await runCli(['status', 'batch.yaml', '--all'], { cwd });
    expect(every.stdout.match(/^ {2}job p\d\d: (done|failed)/gm)).toHaveLength(ITEMS);
    expect(every.stdout).not.toContain('not listed');
    // --merge (the shards of a matrix; here the one state) lists the same way.
    const merged = await runCli(['status', '--merge', '.talk'], { cwd });
    expect(merged.stdout.match(/^ {2}job /gm)).toHaveLength(1);
    expect(merged.stdout).toContain(`  job ${failed[0]}: failed`);
    expect(merged.stdout).toContain(`  ${ITEMS - 1} jobs not listed (${ITEMS - 1} done); every one: talk status --merge .talk --all\n`);
    expect((await runCli(['status', '--merge', '.talk', '--all'], { cwd })).stdout.match(/^ {2}job /gm)).toHaveLength(ITEMS);
    // The JSON form always holds every job.
    const json = JSON.parse((await runCli(['status', 'batch.yaml', '--json'], { cwd })).stdout) as { runs: { jobs: Record<string, unknown> }[] };
    expect(Object.keys(json.runs[0]?.jobs ?? {})).toHaveLength(ITEMS);
  }, 300_000);
});
