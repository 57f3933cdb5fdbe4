// The built CLI end to end: `talk run examples/hello.yaml` offline on the in-process local
// backend, `talk status`, the resume column of `talk plan`, NDJSON on stdout, SIGINT → 130 and a
// resumed run, a budget stop → 3, and a second runner on the same state → a clear error.
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, spawnCli } from '../helpers/cli.js';
import type { TalkEvent } from '../../src/core/events.js';

let dir: string | undefined;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}, 120_000);

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A copy of examples/hello.yaml and its assets, made small so the render is quick. */
async function helloWorkspace(extra = ''): Promise<string> {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-run-'));
  await cp(path.join(REPO_ROOT, 'examples', 'assets'), path.join(dir, 'assets'), { recursive: true });
  const yaml = (await readFile(path.join(REPO_ROOT, 'examples', 'hello.yaml'), 'utf8'))
    .replace(/resolution: 1080p/, 'resolution: 720p')
    .replace(/quality: high/, 'quality: low');
  await writeFile(path.join(dir, 'hello.yaml'), `${yaml}${extra}`);
  return dir;
}

const TYPES = new Set(['run:start', 'step:start', 'step:progress', 'step:retry', 'step:done', 'step:skipped', 'step:failed', 'notice', 'run:done']);

describe('talk run (built CLI)', () => {
  it('runs hello.yaml offline, says where the MP4 is, and a second run skips everything', async () => {
    const cwd = await helloWorkspace();
    const first = await runCli(['run', 'hello.yaml', '--reporter', 'plain'], { cwd });
    expect(first.stderr).not.toMatch(/internal error/);
    expect(first.code).toBe(0);
    const mp4 = path.join(cwd, 'out', 'hello-avatar.mp4');
    expect((await readFile(mp4)).subarray(4, 8).toString()).toBe('ftyp');
    expect(first.stdout).toContain('out/hello-avatar.mp4');

    const second = await runCli(['run', 'hello.yaml', '--json'], { cwd });
    expect(second.code).toBe(0);
    // Nothing but NDJSON events on stdout in json mode.
    const lines = second.stdout.split('\n').filter((l) => l !== '');
    expect(lines.length).toBe(second.events.length);
    for (const e of second.events) expect(TYPES.has(e.type)).toBe(true);
    for (const e of second.events) if (e.type.startsWith('step:')) expect(e).toMatchObject({ job: 'main', step: expect.any(String) as unknown });
    expect(second.events.filter((e) => e.type === 'step:skipped')).toHaveLength(4);
    expect(second.events.at(-1)).toMatchObject({ type: 'run:done', status: 'success', creditsUsed: 0 });

    const status = await runCli(['status', 'hello.yaml', '--json'], { cwd });
    expect(status.code).toBe(0);
    const runs = (JSON.parse(status.stdout) as { runs: { jobs: Record<string, { sessionId?: string; steps: Record<string, { output?: { path: string } }> }>; timelines: Record<string, string> }[] }).runs;
    expect(runs[0]?.jobs['main']?.sessionId).toMatch(/^\d+$/);
    expect(runs[0]?.jobs['main']?.steps['export']?.output?.path).toBe(mp4);
    expect(runs[0]?.timelines['main']).toMatch(/^Timeline \(\d+ tracks?\): 1\. /);
    const text = JSON.stringify(runs);
    expect(text).not.toMatch(/nmv_usr_/);

    const plan = await runCli(['plan', 'hello.yaml'], { cwd });
    expect(plan.stdout).toMatch(/export .*skip \(done\)/);

    // Tokens are never written to the state dir, not even the in-process backend's.
    const stateFiles = await readdir(path.join(cwd, '.talk'), { recursive: true, withFileTypes: true });
    const files = stateFiles.filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name));
    expect(files.length).toBeGreaterThan(2);
    for (const file of files) expect((await readFile(file)).toString('latin1'), file).not.toMatch(/nmv_usr_/);
  });

  it('SIGINT exits 130 with the resume command; the resumed run re-attaches and finishes', async () => {
    const cwd = await helloWorkspace();
    // A state dir of its own: the resume command has to name it, quoted, or it would not resume.
    const child = spawnCli(['run', 'hello.yaml', '--json', '--state-dir', 'run state'], { cwd, env: { TALK_LOCAL_LATENCY: 'render=2500' } });
    await child.waitForEvent((e) => e.type === 'step:progress' && e.step === 'export' && e.percent !== undefined);
    child.child.kill('SIGINT');
    const interrupted = await child.done;
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toContain("resume with: talk run hello.yaml --state-dir 'run state'\n");
    expect(interrupted.events.at(-1)).toMatchObject({ type: 'run:done', status: 'interrupted' });

    const resumed = await runCli(['run', 'hello.yaml', '--state-dir', 'run state', '--json'], { cwd });
    expect(resumed.code).toBe(0);
    expect(resumed.events[0]).toMatchObject({ type: 'run:start', resumed: true });
    const started = resumed.events.filter((e): e is Extract<TalkEvent, { type: 'step:start' }> => e.type === 'step:start').map((e) => e.step);
    expect(started).toEqual(['export']);
    expect((await readFile(path.join(cwd, 'out', 'hello-avatar.mp4'))).subarray(4, 8).toString()).toBe('ftyp');
  });

  it('a budget below the first instruction stops with exit 3 before spending', async () => {
    const cwd = await helloWorkspace('budget:\n  credits: 40\n');
    const result = await runCli(['run', 'hello.yaml', '--reporter', 'plain'], { cwd });
    expect(result.code).toBe(3);
    expect(`${result.stdout}${result.stderr}`).toMatch(/budget of 40/);
    const credits = await runCli(['credits', '--backend', 'local', '--state-dir', '.talk', '--json'], { cwd });
    expect(JSON.parse(credits.stdout)).toMatchObject({ available: 100 });
  });

  it('out of credits on the local backend: exit 3 with the local way out (no web registration link), which works', async () => {
    const cwd = await helloWorkspace();
    const poor = await runCli(['run', 'hello.yaml', '--reporter', 'plain'], { cwd, env: { TALK_LOCAL_ANONYMOUS_CREDITS: '50' } });
    expect(poor.code).toBe(3);
    const said = `${poor.stdout}${poor.stderr}`;
    expect(said).toMatch(/local backend's accounts are simulated: remove \.talk\/local-backend to start a new one \(it gets 50 credits; TALK_LOCAL_ANONYMOUS_CREDITS sets more\), then run again/);
    expect(said).not.toMatch(/register\?bind=/);
    // Doing what it says finishes the run, in a new session (the old one went with the folder).
    await rm(path.join(cwd, '.talk', 'local-backend'), { recursive: true });
    const rich = await runCli(['run', 'hello.yaml', '--json'], { cwd, env: { TALK_LOCAL_ANONYMOUS_CREDITS: '1000' } });
    expect(rich.code).toBe(0);
    expect(rich.events.some((e) => e.type === 'step:failed')).toBe(false);
    expect((await readFile(path.join(cwd, 'out', 'hello-avatar.mp4'))).subarray(4, 8).toString()).toBe('ftyp');
  });

  it('examples/ci.yaml runs as its header says, within its budget and a new account\'s credits', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-ci-'));
    const cwd = dir;
    await cp(path.join(REPO_ROOT, 'examples', 'assets'), path.join(cwd, 'assets'), { recursive: true });
    await cp(path.join(REPO_ROOT, 'examples', 'ci.yaml'), path.join(cwd, 'ci.yaml'));
    const result = await runCli(['run', 'ci.yaml', '--json', '--var', 'release=1.2.0'], { cwd });
    expect(result.code, result.stderr).toBe(0);
    const done = result.events.at(-1);
    expect(done).toMatchObject({ type: 'run:done', status: 'success' });
    expect(done?.type === 'run:done' ? done.creditsUsed : Infinity).toBeLessThanOrEqual(100);
    expect((await readFile(path.join(cwd, 'out', 'ci', 'release-video-1.2.0.mp4'))).subarray(4, 8).toString()).toBe('ftyp');
  });

  it('a second runner on the same state is refused with who holds it', async () => {
    const cwd = await helloWorkspace();
    const first = spawnCli(['run', 'hello.yaml', '--json'], { cwd, env: { TALK_LOCAL_LATENCY: 'render=2500' } });
    await first.waitForEvent((e) => e.type === 'step:start');
    const second = await runCli(['run', 'hello.yaml', '--json'], { cwd });
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/another talk run \(pid \d+/);
    expect(second.stdout).toBe('');
    const done = await first.done;
    expect(done.code).toBe(0);
  });
});
