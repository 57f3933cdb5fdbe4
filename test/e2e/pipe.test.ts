// A reader that goes away (`talk … | head`): the CLI ends quietly — exit 0 for commands that
// only print, and a run stops as on Ctrl-C with its state saved — never an EPIPE stack trace.
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, TALK_BIN, runCli, scrubbedEnv } from '../helpers/cli.js';

let dir: string | undefined;
beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}, 120_000);
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Run the CLI with its stdout closed at once (or after its first chunk), and collect exit code and stderr. */
function closedReader(args: string[], cwd: string, when: 'at-once' | 'after-first-chunk'): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TALK_BIN, ...args], { cwd, env: scrubbedEnv(cwd), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    if (when === 'at-once') child.stdout.destroy();
    else child.stdout.once('data', () => child.stdout.destroy());
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('a closed stdout', () => {
  it.each([['watch', '--help'], ['schema'], ['plan', 'hello.yaml'], ['status', 'hello.yaml']])('talk %s … ends quietly with exit 0', async (...args) => {
    dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-pipe-'));
    await cp(path.join(REPO_ROOT, 'examples', 'assets'), path.join(dir, 'assets'), { recursive: true });
    await writeFile(path.join(dir, 'hello.yaml'), await readFile(path.join(REPO_ROOT, 'examples', 'hello.yaml'), 'utf8'));
    const result = await closedReader(args, dir, 'at-once');
    expect(result.stderr).not.toMatch(/EPIPE|Unhandled|internal error/);
    expect(result.code).toBe(0);
  });

  it('a run whose reader goes away stops as on Ctrl-C (exit 130) and the next run finishes it', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-pipe-'));
    await cp(path.join(REPO_ROOT, 'examples', 'assets'), path.join(dir, 'assets'), { recursive: true });
    const yaml = (await readFile(path.join(REPO_ROOT, 'examples', 'hello.yaml'), 'utf8')).replace(/resolution: 1080p/, 'resolution: 720p').replace(/quality: high/, 'quality: low');
    await writeFile(path.join(dir, 'hello.yaml'), yaml);
    const cut = await closedReader(['run', 'hello.yaml', '--json'], dir, 'after-first-chunk');
    expect(cut.stderr).not.toMatch(/EPIPE|Unhandled|internal error/);
    expect(cut.code).toBe(130);
    const again = await runCli(['run', 'hello.yaml', '--json'], { cwd: dir });
    expect(again.code).toBe(0);
    expect(again.events.at(-1)).toMatchObject({ type: 'run:done', status: 'success' });
  });
});
