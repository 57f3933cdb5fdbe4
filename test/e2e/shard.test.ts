// `talk run --shard i/n` end to end: three shards of one batch, run side by side against one
// `talk serve`, cover every job exactly once (the backend's counters say so), each in a state
// of its own; `talk status --merge` reports the whole; bad forms are usage errors (exit 2).
import { readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { batchWorkspace, startServe, type Served } from '../helpers/serve.js';
import type { TalkEvent } from '../../src/core/events.js';

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}, 120_000);

const ITEMS = 7;
let served: Served;
let cwd: string;

beforeAll(async () => {
  served = await startServe({ env: { TALK_LOCAL_ANONYMOUS_CREDITS: String(100 * ITEMS) } });
  cwd = await batchWorkspace(ITEMS);
}, 60_000);

afterAll(async () => {
  await served.stop();
  await rm(cwd, { recursive: true, force: true });
});

const jobsStarted = (events: TalkEvent[]): string[] => [...new Set(events.flatMap((e) => (e.type === 'step:start' ? [e.job] : [])))].sort();

describe('talk run --shard (built CLI)', () => {
  it('bad forms are usage errors: 0/3, 4/3, a/b, 1/0', async () => {
    for (const bad of ['0/3', '4/3', 'a/b', '1/0', '2']) {
      const result = await runCli(['run', 'batch.yaml', '--shard', bad, '--backend', served.url], { cwd });
      expect(result.code, bad).toBe(2);
      expect(result.stderr, bad).toMatch(/--shard/);
    }
  });

  it('1/3, 2/3 and 3/3 side by side cover every job exactly once; status --merge reports the whole', async () => {
    const env = { NEMO_CLIENT_ID: 'e2e-shards' };
    const shards = await Promise.all(
      [1, 2, 3].map((i) => runCli(['run', 'batch.yaml', '--shard', `${i}/3`, '--backend', served.url, '--json', '--no-report'], { cwd, env, timeoutMs: 300_000 })),
    );
    for (const s of shards) expect(s.stderr).not.toMatch(/internal error/);
    expect(shards.map((s) => s.code)).toEqual([0, 0, 0]);
    const slices = shards.map((s) => jobsStarted(s.events));
    // Balanced: 7 jobs in 3 shards are 3, 2 and 2; disjoint, and together every job.
    expect(slices.map((s) => s.length)).toEqual([3, 2, 2]);
    const all = slices.flat().sort();
    expect(all).toEqual(Array.from({ length: ITEMS }, (_, i) => `p${String(i).padStart(2, '0')}`));
    expect(new Set(all).size).toBe(ITEMS);
    // Each run:start announces its slice only, and which slice of the whole it is.
    for (const [i, s] of shards.entries()) expect(s.events[0]).toMatchObject({ type: 'run:start', jobs: slices[i]?.length, shard: { index: i + 1, count: 3, of: ITEMS } });
    const stats = await served.stats();
    expect(stats).toMatchObject({ messages: ITEMS, rendersStarted: ITEMS, creditsSpent: 100 * ITEMS });
    for (const job of all) expect((await readFile(path.join(cwd, 'out', `${job}.mp4`))).subarray(4, 8).toString()).toBe('ftyp');

    // The same slicing again is deterministic: every shard resumes its own state and skips all.
    const again = await runCli(['run', 'batch.yaml', '--shard', '2/3', '--backend', served.url, '--json', '--no-report'], { cwd, env });
    expect(again.code).toBe(0);
    expect(again.events.filter((e) => e.type === 'step:start')).toHaveLength(0);
    expect(again.events[0]).toMatchObject({ type: 'run:start', resumed: false, jobs: 2 });
    expect((await served.stats()).messages).toBe(ITEMS);
    const plain = await runCli(['run', 'batch.yaml', '--shard', '3/3', '--backend', served.url, '--reporter', 'plain', '--no-report'], { cwd, env });
    expect(plain.stdout).toMatch(/starting batch \(.*batch\.yaml\) on .*: 2 jobs \(shard 3\/3, of 7\)/);
    const dry = await runCli(['run', 'batch.yaml', '--shard', '1/3', '--dry-run'], { cwd });
    expect(dry.stdout).toContain("shard 1/3: 3 of the workflow's 7 jobs (dealt out by sorted job id)");

    const merged = await runCli(['status', '--merge', '.talk', '--json'], { cwd });
    expect(merged.code).toBe(0);
    const report = JSON.parse(merged.stdout) as { merged: { shards: { count: number; found: number[]; missing: number[] }; totals: { jobs: number; done: number }; duplicates: string[]; complete: boolean; creditsUsed: number }[] };
    expect(report.merged).toHaveLength(1);
    expect(report.merged[0]).toMatchObject({ shards: { count: 3, found: [1, 2, 3], missing: [] }, totals: { jobs: ITEMS, done: ITEMS }, duplicates: [], complete: true, creditsUsed: 100 * ITEMS });
    const text = await runCli(['status', 'batch.yaml', '--merge', '.talk'], { cwd });
    expect(text.stdout).toMatch(/batch \(batch\.yaml\) on .*: complete · 3 of 3 shards · 7 jobs: 7 done · 700 credits used/);
    expect(text.stdout).toMatch(/job p04: done · shard 2\/3 → out\/p04\.mp4/);
  }, 300_000);

  it('status --merge says when a shard is missing', async () => {
    const merged = await runCli(['status', '--merge', '.talk', '--json'], { cwd });
    const report = JSON.parse(merged.stdout) as { merged: { shards: { found: number[] } }[] };
    // Remove one shard's state (as if its runner never uploaded its artifact).
    const runDir = path.join(cwd, '.talk', 'runs', 'batch.yaml');
    const { readdir } = await import('node:fs/promises');
    const shardDir = (await readdir(runDir)).find((d) => d.endsWith('.shard-3-of-3'));
    expect(shardDir).toBeDefined();
    expect(report.merged[0]?.shards.found).toEqual([1, 2, 3]);
    await rm(path.join(runDir, shardDir!), { recursive: true });
    const after = await runCli(['status', '--merge', '.talk'], { cwd });
    expect(after.stdout).toMatch(/incomplete · 2 of 3 shards \(missing 3\) · 5 jobs: 5 done/);
  });
});
