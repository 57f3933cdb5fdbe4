// Money rules end to end (SPEC §1): admission by reservation, the fit check before the first
// paid request, `--partial`, and state kept per backend. The built CLI runs against a local
// backend in this process (its counters span every run) or in-process (`--backend local`).
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { startLocalBackend, type LocalBackend } from '../../src/local-backend/index.js';
import { batchForm } from '../integration/runner/rig.js';

let dir: string | undefined;
let backend: LocalBackend | undefined;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}, 120_000);

afterEach(async () => {
  await backend?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  backend = undefined;
  dir = undefined;
});

/** A batch of `items` portraits (the example's assets), one generation each, at concurrency 3. */
async function batchWorkspace(items: number): Promise<string> {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-credits-'));
  await mkdir(path.join(dir, 'faces'));
  await mkdir(path.join(dir, 'voices'));
  const assets = path.join(REPO_ROOT, 'examples', 'assets');
  for (let i = 0; i < items; i += 1) {
    await cp(path.join(assets, 'portrait.jpg'), path.join(dir, 'faces', `p${i}.jpg`));
    await cp(path.join(assets, 'voice.mp3'), path.join(dir, 'voices', `p${i}.mp3`));
  }
  const yaml = batchForm('eight', 3);
  await writeFile(path.join(dir, 'batch.yaml'), yaml);
  return dir;
}

describe('credits', () => {
  it('8 jobs × 100 credits on a 100-credit account: exit 3 before anything is sent; with --partial exactly one job runs and delivers', async () => {
    const cwd = await batchWorkspace(8);
    backend = await startLocalBackend({ dataDir: path.join(cwd, 'backend-data'), silentEditRatio: 0 });
    const args = ['run', 'batch.yaml', '--backend', backend.url, '--reporter', 'plain'];

    const refused = await runCli(args, { cwd });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/1 of 8 jobs fit in 100 credits; the batch needs about 800\. Nothing was sent\./);
    expect(refused.stderr).toMatch(/--partial/);
    expect(backend.stats()).toMatchObject({ sessionsCreated: 0, uploads: 0, messages: 0, rendersStarted: 0, creditsSpent: 0 });

    const partial = await runCli([...args, '--partial', '--json'], { cwd });
    expect(partial.stderr).not.toMatch(/internal error/);
    expect(partial.code).toBe(3);
    const stats = backend.stats();
    expect(stats.sessionsCreated).toBe(1);
    expect(stats.messages).toBe(1);
    expect(stats.rendersStarted).toBe(1);
    expect(stats.creditsSpent).toBe(100);
    const videos = (await readdir(path.join(cwd, 'out'))).filter((f) => f.endsWith('.mp4'));
    expect(videos).toHaveLength(1);
    // The paid job's export ran, and the other seven are listed as not started.
    const done = partial.events.find((e) => e.type === 'run:done');
    expect(done).toMatchObject({ status: 'credits', creditsUsed: 100 });
    const notStarted = new Set(partial.events.filter((e) => e.type === 'step:skipped' && e.reason === 'not-started').map((e) => (e as { job: string }).job));
    expect(notStarted.size).toBe(7);
    expect(partial.events.some((e) => e.type === 'notice' && /7 of 8 jobs not started/.test(e.message))).toBe(true);
  });

  it('a run on another backend never replaces one that is recorded: local, then cloud offline, then local again spends 100 once', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-credits-'));
    const cwd = dir;
    await cp(path.join(REPO_ROOT, 'examples', 'assets'), path.join(cwd, 'assets'), { recursive: true });
    const yaml = (await readFile(path.join(REPO_ROOT, 'examples', 'hello.yaml'), 'utf8')).replace(/resolution: 1080p/, 'resolution: 720p').replace(/quality: high/, 'quality: low');
    await writeFile(path.join(cwd, 'hello.yaml'), yaml);
    const first = await runCli(['run', 'hello.yaml', '--json'], { cwd });
    expect(first.code).toBe(0);
    expect(first.events.at(-1)).toMatchObject({ type: 'run:done', creditsUsed: 100 });
    // The cloud cannot be reached from here: an address nothing listens on stands for it.
    const offline = await runCli(['run', 'hello.yaml', '--backend', 'cloud', '--json'], { cwd, env: { NEMO_API_URL: 'http://127.0.0.1:9' } });
    expect(offline.code).not.toBe(0);
    const third = await runCli(['run', 'hello.yaml', '--json'], { cwd });
    expect(third.code).toBe(0);
    expect(third.events.at(-1)).toMatchObject({ type: 'run:done', status: 'success', creditsUsed: 0 });
    expect(third.events.filter((e) => e.type === 'step:start')).toEqual([]);
    // Each backend keeps its own record, and `talk status` shows both.
    const status = await runCli(['status', 'hello.yaml', '--json'], { cwd });
    const runs = (JSON.parse(status.stdout) as { runs: { backend?: string; creditsUsed: number }[] }).runs;
    expect(runs.map((r) => r.backend).sort()).toEqual(['http://127.0.0.1:9', 'local']);
    expect(runs.find((r) => r.backend === 'local')?.creditsUsed).toBe(100);
  });

  it('talk plan after a finished run says the run would spend nothing now, beside the whole workflow’s cost', async () => {
    const cwd = await batchWorkspace(1);
    const first = await runCli(['run', 'batch.yaml', '--backend', 'local', '--json'], { cwd });
    expect(first.code).toBe(0);
    const plan = await runCli(['plan', 'batch.yaml', '--backend', 'local'], { cwd });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/credits now: about 0, the whole workflow about 100;/);
    expect(plan.stdout).toMatch(/skip \(done\)/);
    const dry = await runCli(['run', 'batch.yaml', '--backend', 'local', '--dry-run'], { cwd });
    expect(dry.stdout).toMatch(/credits now: about 0/);
  });
});
