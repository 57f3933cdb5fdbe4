// The built CLI as a shell user meets it: a flag the command does not take (exit 2), stdout
// piped into a reader that closes early (quiet end; a run stops as on SIGINT and resumes),
// and `talk credits <workflow>` from another folder showing the account that workflow spends.
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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

async function helloWorkspace(): Promise<string> {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-cli-'));
  await cp(path.join(REPO_ROOT, 'examples', 'assets'), path.join(dir, 'assets'), { recursive: true });
  const yaml = (await readFile(path.join(REPO_ROOT, 'examples', 'hello.yaml'), 'utf8')).replace(/resolution: 1080p/, 'resolution: 720p').replace(/quality: high/, 'quality: low');
  await writeFile(path.join(dir, 'hello.yaml'), yaml);
  return dir;
}

/**
 * Runs the CLI with its stdout read end closed before the child writes anything (the parent
 * destroys it at once, while the child is still starting): every write the child makes meets
 * a closed pipe, as `talk … | head -0` would.
 */
function runIntoClosedPipe(args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [TALK_BIN, ...args], { cwd, env: scrubbedEnv(cwd), stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('the CLI at the shell', () => {
  it('a flag the command does not take is a usage error, exit 2', async () => {
    const cwd = await helloWorkspace();
    const credits = await runCli(['credits', '--backend', 'local', '--fresh', '--var', 'a=b', '--dry-run'], { cwd });
    expect(credits.code).toBe(2);
    expect(credits.stderr).toMatch(/unknown option '--fresh'/);
    const validate = await runCli(['validate', 'hello.yaml', '--backend', 'htp://x'], { cwd });
    expect(validate.code).toBe(2);
    expect(validate.stdout).not.toMatch(/valid/);
  });

  it.each([
    ['help', ['watch', '--help']],
    ['schema', ['schema']],
    ['plan', ['plan', 'hello.yaml']],
    ['status', ['status', 'hello.yaml']],
    ['validate', ['validate', 'hello.yaml']],
  ])('%s into a closed pipe ends quietly with exit 0', async (_name, args) => {
    const cwd = await helloWorkspace();
    const result = await runIntoClosedPipe(args, cwd);
    expect(result.stderr).not.toMatch(/EPIPE|Error|at /);
    expect(result.code).toBe(0);
  });

  it('a run into a closed pipe stops as on SIGINT (130, state saved) and the same command resumes it', async () => {
    const cwd = await helloWorkspace();
    const stopped = await runIntoClosedPipe(['run', 'hello.yaml', '--json'], cwd);
    expect(stopped.stderr).not.toMatch(/EPIPE|internal error/);
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/resume with: talk run hello\.yaml/);
    const resumed = await runCli(['run', 'hello.yaml', '--json'], { cwd });
    expect(resumed.code).toBe(0);
    expect((await readFile(path.join(cwd, 'out', 'hello-avatar.mp4'))).subarray(4, 8).toString()).toBe('ftyp');
  });

  it('talk credits <workflow> from another folder shows the account that workflow spends from, and says which', async () => {
    const cwd = await helloWorkspace();
    const run = await runCli(['run', 'hello.yaml', '--json'], { cwd });
    expect(run.code).toBe(0);
    const elsewhere = path.join(cwd, 'elsewhere');
    await mkdir(elsewhere);
    const credits = await runCli(['credits', '../hello.yaml', '--json'], { cwd: elsewhere });
    expect(credits.code).toBe(0);
    const shown = JSON.parse(credits.stdout) as { available: number; backend: string; account: string };
    expect(shown).toMatchObject({ backend: 'local', available: 0 });
    expect(shown.account).toMatch(/\.talk\/local-backend, which runs of \.\.\/hello\.yaml spend from/);
    expect(existsSync(path.join(elsewhere, '.talk'))).toBe(false);

    // No workflow and no local account here: it says what a new account gets, and makes none.
    const bare = await runCli(['credits', '--backend', 'local'], { cwd: elsewhere });
    expect(bare.code, bare.stderr).toBe(0);
    expect(bare.stdout).toContain('no local backend account in .talk/local-backend yet; a new one gets 100 credits');
    expect(bare.stdout).toContain('name a workflow (`talk credits hello.yaml`)');
    expect(existsSync(path.join(elsewhere, '.talk'))).toBe(false);
  });

  it('a missing ffmpeg is the machine, not a bug: the step says which tool is missing', async () => {
    const cwd = await helloWorkspace();
    const result = await runCli(['run', 'hello.yaml', '--reporter', 'plain'], { cwd, env: { FFMPEG_PATH: path.join(cwd, 'no-such-ffmpeg'), FFPROBE_PATH: path.join(cwd, 'no-such-ffprobe') } });
    const said = `${result.stdout}${result.stderr}`;
    expect(result.code).toBe(1);
    expect(said).toMatch(/no-such-ff(mpeg|probe) was not found on this machine/);
    expect(said).not.toMatch(/internal|this is a bug/);
  });

  it('an undeclared --var is a warning naming the declared ones (exit 2 under --strict); validate --json keeps argument order', async () => {
    const cwd = await helloWorkspace();
    await writeFile(path.join(cwd, 'a.yaml'), `${await readFile(path.join(cwd, 'hello.yaml'), 'utf8')}vars:\n  release: "1.0"\n`);
    const loose = await runCli(['validate', 'a.yaml', '--var', 'relase=1.1'], { cwd });
    expect(loose.code).toBe(0);
    expect(loose.stdout).toMatch(/warning.*--var relase is not a variable of this workflow \(it declares: release\)/);
    const strict = await runCli(['validate', 'a.yaml', '--var', 'relase=1.1', '--strict'], { cwd });
    expect(strict.code).toBe(2);
    const plan = await runCli(['plan', 'a.yaml', '--var', 'relase=1.1', '--strict'], { cwd });
    expect(plan.code).toBe(2);
    const json = await runCli(['validate', '--json', 'hello.yaml', 'a.yaml'], { cwd });
    expect((JSON.parse(json.stdout) as { files: { file: string }[] }).files.map((f) => f.file)).toEqual(['hello.yaml', 'a.yaml']);
  });

  it('talk status on a file that does not exist is an error; a bare talk status says where state lives', async () => {
    const cwd = await helloWorkspace();
    const missing = await runCli(['status', 'nope.yaml'], { cwd });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.yaml does not exist/);
    const bare = await runCli(['status'], { cwd });
    expect(bare.code).toBe(0);
    expect(bare.stdout).toMatch(/run state lives in \.talk\/ beside each workflow \(or --state-dir\)/);
  });

  it('hints spell the command that works where the user is: node and the path when talk is not on the PATH', async () => {
    const cwd = await helloWorkspace();
    // The suite pins TALK_PROGRAM=talk; unpinned, with a PATH that holds no talk of ours.
    const env = { TALK_PROGRAM: undefined, PATH: path.dirname(process.execPath) };
    const program = `node ${realpathSync(TALK_BIN)}`;
    const init = await runCli(['init', 'new.yaml'], { cwd, env });
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`next: ${program} validate new.yaml && ${program} run new.yaml`);
    const missing = await runCli(['status', 'nope.yaml'], { cwd, env });
    expect(missing.stderr).toContain(`run \`${program} status\``);
    expect(missing.stderr).not.toContain('`talk ');
    // Data on stdout is left word for word: the schema, JSON.
    const schema = execFileSync(process.execPath, [TALK_BIN, 'schema'], { cwd, env: scrubbedEnv(cwd, env) }).toString();
    expect(schema).toContain('`talk serve`');
    expect(schema).not.toContain(program);
    const pinned = await runCli(['status', 'nope.yaml'], { cwd, env: { ...env, TALK_PROGRAM: 'npx --no-install talk' } });
    expect(pinned.stderr).toContain('run `npx --no-install talk status`');
  });
});
