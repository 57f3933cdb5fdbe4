/**
 * The built CLI's output, end to end: `talk run` against a `talk serve` on loopback, in a temp
 * dir with a scrubbed environment. Plain and json output line by line, the tty renderer under
 * a pseudo-terminal, GitHub groups/annotations/step summary, and the token nowhere — neither
 * with a known NEMO_TOKEN nor through the anonymous flow with forced 1001 renewals.
 */
import { cp, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, runCliInTerminal, spawnCli, stripAnsi, type CliProcess, type CliResult } from '../helpers/cli.js';

/** Every file under `dir` (state dirs), concatenated. */
async function readTree(dir: string): Promise<string> {
  let text = '';
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return '';
  }
  for (const entry of entries) {
    const full = join(entry.parentPath, entry.name);
    if (entry.isDirectory()) text += await readTree(full);
    else if ((await stat(full)).size < 5_000_000) text += await readFile(full, 'latin1');
  }
  return text;
}

/** A temp project with the example workflow and its assets. */
async function project(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'talk-e2e-rep-'));
  await cp(join(REPO_ROOT, 'examples'), join(dir, 'examples'), { recursive: true });
  return dir;
}

interface Server {
  url: string;
  process: CliProcess;
  dir: string;
}

async function serve(args: string[] = []): Promise<Server> {
  const dir = await mkdtemp(join(tmpdir(), 'talk-e2e-serve-'));
  const child = spawnCli(['serve', '--port', '0', '--data-dir', join(dir, 'data'), ...args], { cwd: dir, timeoutMs: 300_000 });
  const match = await child.waitForOutput(/listening on (http:\/\/\S+)/);
  return { url: match[1]!, process: child, dir };
}

async function stopServer(server: Server): Promise<void> {
  server.process.child.kill('SIGTERM');
  await server.process.done;
  await rm(server.dir, { recursive: true, force: true });
}

async function anonymousToken(url: string, clientId: string): Promise<string> {
  const response = await fetch(`${url}/api/auth/anonymous-token`, { method: 'POST', headers: { 'X-Client-Id': clientId } });
  const body = (await response.json()) as { data?: { token?: string } };
  const token = body.data?.token;
  if (token === undefined) throw new Error(`no token from ${url}`);
  return token;
}

describe('talk run output (e2e)', () => {
  let server: Server;
  beforeAll(async () => {
    server = await serve();
  });
  afterAll(async () => {
    await stopServer(server);
  });

  it('plain: one `HH:MM:SS job step message` line per event, no ANSI, then the summary', async () => {
    const dir = await project();
    try {
      const result = await runCli(['run', 'examples/hello.yaml', '--backend', server.url, '--reporter', 'plain'], { cwd: dir, env: { NEMO_CLIENT_ID: 'e2e-plain' } });
      expect(result.code, result.stderr).toBe(0);
      expect(result.rawStdout).not.toContain('\u001b[');
      const [log, summary] = result.stdout.split('\nSummary: ');
      const lines = log!.trimEnd().split('\n');
      for (const line of lines) expect(line).toMatch(/^\d\d:\d\d:\d\d \S+ \S+ \S/);
      expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d - - starting hello-avatar \(.*hello\.yaml\) on http:\/\/127\.0\.0\.1:\d+: 1 job$/);
      expect(lines.some((l) => / main upload-portrait uploading [\d.]+ KB \/ [\d.]+ KB \(100%\)/.test(l))).toBe(true);
      expect(lines.some((l) => / main instruction-1 done in .* · 100 credits · "/.test(l))).toBe(true);
      expect(lines.some((l) => / main export done in .* → .*hello-avatar\.mp4$/.test(l))).toBe(true);
      expect(lines.at(-1)).toMatch(/^\d\d:\d\d:\d\d - - run success in .* · 100 credits$/);
      expect(summary).toMatch(/^success · 1 job · .* · 100 credits\n {2}✔ main {2}.*hello-avatar\.mp4 {2}.* {2}100 credits\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('json: every stdout line is a SPEC §1 event, in order, and nothing else', async () => {
    const dir = await project();
    try {
      const result = await runCli(['run', 'examples/hello.yaml', '--backend', server.url, '--json'], { cwd: dir, env: { NEMO_CLIENT_ID: 'e2e-json' } });
      expect(result.code, result.stderr).toBe(0);
      const lines = result.stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(result.events.length);
      const types = result.events.map((e) => e.type);
      expect(types[0]).toBe('run:start');
      expect(types.at(-1)).toBe('run:done');
      for (const event of result.events) {
        expect(Number.isNaN(Date.parse(event.ts))).toBe(false);
        if (event.type.startsWith('step:')) expect(event).toMatchObject({ job: 'main', step: expect.any(String) as string });
      }
      const done = result.events.at(-1);
      expect(done).toMatchObject({ type: 'run:done', status: 'success', creditsUsed: 100 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tty: on a terminal, auto draws with listr2 and ends with the summary', async () => {
    const dir = await project();
    // A render floor far above the 100 ms frames and the client's polls, so the render's
    // progress is on screen for many frames (a cached render is otherwise instant).
    const slow = await serve(['--latency', 'render=2500']);
    try {
      const result = await runCliInTerminal(['run', 'examples/hello.yaml', '--backend', slow.url], { cwd: dir, env: { NEMO_CLIENT_ID: 'e2e-tty' }, columns: 120 });
      expect(result.code, result.stdout).toBe(0);
      // listr2 hides the cursor while drawing and redraws in place.
      expect(result.rawStdout).toContain('\u001b[?25l');
      // The header counts, and the job's row is drawn with its activity while it runs.
      expect(result.stdout).toMatch(/✔ hello-avatar · 1 done · 100 credits/);
      expect(result.stdout).toMatch(/export · (rendering \d+%|downloading )/);
      expect(result.stdout).toMatch(/Summary: success · 1 job · .* · 100 credits\n {2}✔ main/);
      // No plain-mode timestamps: this is the live view.
      expect(result.stdout).not.toMatch(/^\d\d:\d\d:\d\d main /m);
    } finally {
      await stopServer(slow);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tty: a batch ends with its tree drawn once, then the report line, then the summary; a step marked ✔ always reads done', async () => {
    const dir = await project();
    try {
      const result = await runCliInTerminal(['run', 'examples/batch.yaml'], { cwd: dir, env: { NEMO_CLIENT_ID: 'e2e-tty-batch', TALK_LOCAL_ANONYMOUS_CREDITS: '1000' }, columns: 120 });
      expect(result.code, result.stdout).toBe(0);
      // What stays on screen: the last frame listr2 drew in place, and what was written after it.
      const raw = result.rawStdout;
      const tail = stripAnsi(raw.slice(raw.lastIndexOf('\u001b[G')));
      expect(tail.match(/✔ team-intros · \d+ done/g), tail).toHaveLength(1);
      expect(tail).toMatch(/✔ team-intros · \d+ done[^]*\nreport: examples\/out\/batch\/report\.html\n[^]*Summary: success/);
      // In every frame a step marked ✔ reads as done, never as what it was doing.
      expect(result.stdout).toMatch(/✔ instruction-1 · done in /);
      expect(result.stdout).not.toMatch(/✔ (upload-\w+|instruction-\d+|export) · (?!done in )/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tty: Ctrl-C keeps the step lines, marks the step in flight ■ and the job ↓ interrupted, and says how to resume once', async () => {
    const dir = await project();
    const slow = await serve(['--latency', 'render=20000']);
    try {
      const result = await runCliInTerminal(['run', 'examples/hello.yaml', '--backend', slow.url], {
        cwd: dir,
        env: { NEMO_CLIENT_ID: 'e2e-tty-int' },
        columns: 120,
        ctrlCWhen: (screen) => /export · rendering \d+%/.test(screen),
      });
      expect(result.code, result.stdout).toBe(130);
      // The last frame listr2 drew (after its last in-place redraw), then the summary.
      const raw = result.rawStdout;
      const last = stripAnsi(raw.slice(raw.lastIndexOf('\u001b[G')));
      expect(last).toMatch(/↓ main · interrupted/);
      expect(last).toMatch(/ {2}✔ upload-portrait · done in /);
      expect(last).toMatch(/ {2}✔ instruction-1 · done in .* · 100 credits/);
      expect(last).toMatch(/ {2}■ export · interrupted \(was rendering \d+%\)/);
      expect(last).not.toMatch(/✔ main/);
      expect(result.stdout.match(/resume with/g)).toHaveLength(1);
    } finally {
      await stopServer(slow);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tty: a job whose step failed ends ✖ with its step lines, not ✔', async () => {
    const dir = await project();
    const faulty = await serve(['--fault', 'render:status=400:x1']);
    try {
      const result = await runCliInTerminal(['run', 'examples/hello.yaml', '--backend', faulty.url], { cwd: dir, env: { NEMO_CLIENT_ID: 'e2e-tty-fail' }, columns: 120 });
      expect(result.code, result.stdout).toBe(1);
      const raw = result.rawStdout;
      const last = stripAnsi(raw.slice(raw.lastIndexOf('\u001b[G')));
      expect(last).toMatch(/✖ main/);
      expect(last).toMatch(/ {2}✖ export · failed/);
      expect(last).not.toMatch(/[✔⚠] main/);
    } finally {
      await stopServer(faulty);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('tty: NO_COLOR turns colours off on a terminal; --quiet prints only the summary', async () => {
    const dir = await project();
    try {
      const colourless = await runCliInTerminal(['run', 'examples/hello.yaml', '--backend', server.url], { cwd: dir, env: { NEMO_CLIENT_ID: 'e2e-nocolor', NO_COLOR: '1' } });
      expect(colourless.code, colourless.stdout).toBe(0);
      expect(colourless.rawStdout).toContain('\u001b[?25l');
      // No SGR sequence (ESC [ … m) at all: cursor moves remain, colours do not.
      expect(colourless.rawStdout).not.toMatch(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`));
      const quiet = await runCli(['run', 'examples/hello.yaml', '--backend', server.url, '--quiet', '--fresh'], { cwd: dir, env: { NEMO_CLIENT_ID: 'e2e-quiet' } });
      expect(quiet.code, quiet.stderr).toBe(0);
      expect(quiet.stdout).toMatch(/^\nSummary: success · 1 job · .* · 100 credits\n {2}✔ main .*\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('GitHub Actions: groups, an error annotation for the failed step, and the step summary', async () => {
    const failing = await serve(['--fault', 'render:status=400:x10']);
    const dir = await project();
    try {
      const summaryFile = join(dir, 'step-summary.md');
      const result = await runCli(['run', 'examples/hello.yaml', '--backend', failing.url, '--reporter', 'plain'], {
        cwd: dir,
        env: { NEMO_CLIENT_ID: 'e2e-gh', GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summaryFile },
      });
      expect(result.code).toBe(1);
      const lines = result.stdout.split('\n');
      expect(lines.filter((l) => l.startsWith('::group::') || l === '::endgroup::')).toEqual(['::group::job main', '::endgroup::']);
      const errors = lines.filter((l) => l.startsWith('::error'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^::error (file=examples\/hello\.yaml,line=\d+,col=\d+,)?title=talk%3A step export failed::.+\. Next: /);
      const markdown = await readFile(summaryFile, 'utf8');
      expect(markdown).toContain('### ❌ talk: hello-avatar — failed');
      expect(markdown).toMatch(/\| main \| failed \|/);
      expect(markdown).toContain('#### Failures');
    } finally {
      await rm(dir, { recursive: true, force: true });
      await stopServer(failing);
    }
  });
});

describe('no token in any output (e2e)', () => {
  const reporters = ['plain', 'json', 'tty'] as const;

  /** One run per reporter; `envFor` gives each its own identity (a grant of 100 credits pays one run). */
  async function runEvery(url: string, envFor: (reporter: string) => Promise<Record<string, string>>): Promise<{ results: CliResult[]; everything: string }> {
    const results: CliResult[] = [];
    let everything = '';
    for (const reporter of reporters) {
      const dir = await project();
      try {
        const summaryFile = join(dir, 'step-summary.md');
        const args = ['run', 'examples/hello.yaml', '--backend', url, '--verbose', '--fresh'];
        const runEnv = { ...(await envFor(reporter)), GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summaryFile };
        const result = reporter === 'tty' ? await runCliInTerminal(args, { cwd: dir, env: runEnv }) : await runCli([...args, '--reporter', reporter], { cwd: dir, env: runEnv });
        results.push(result);
        everything += result.rawStdout + result.rawStderr + (await readTree(join(dir, 'examples', '.talk'))) + (await readFile(summaryFile, 'utf8').catch(() => ''));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    return { results, everything };
  }

  it('a known NEMO_TOKEN, in --verbose and every reporter', async () => {
    const server = await serve();
    try {
      const tokens: string[] = [];
      const { results, everything } = await runEvery(server.url, async (reporter) => {
        const token = await anonymousToken(server.url, `e2e-known-token-${reporter}`);
        tokens.push(token);
        return { NEMO_TOKEN: token };
      });
      for (const result of results) expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(everything.length).toBeGreaterThan(1000);
      expect(tokens).toHaveLength(3);
      for (const token of tokens) expect(everything).not.toContain(token);
      expect(everything).not.toContain('nmv_usr_');
    } finally {
      await stopServer(server);
    }
  });

  it('the anonymous flow with 1001 faults forcing renewals, in --verbose and every reporter', async () => {
    const server = await serve();
    try {
      const clientId = (reporter: string): string => `e2e-anonymous-${reporter}`;
      const { results, everything } = await runEvery(server.url, async (reporter) => {
        // Each run meets one 1001 when it creates its session and one on its turn: two renewals.
        const armed = await fetch(`${server.url}/__local/faults`, { method: 'POST', body: JSON.stringify({ rules: ['session:code=1001:x1', 'sse:code=1001:x1'] }) });
        expect(armed.status).toBe(200);
        return { NEMO_CLIENT_ID: clientId(reporter) };
      });
      for (const result of results) expect(result.code, result.stderr + result.stdout).toBe(0);
      const stats = (await (await fetch(`${server.url}/__local/stats`)).json()) as { faultsFired: Record<string, number>; tokensIssued: number };
      // Every fault fired, so the runs renewed their tokens (the json run shows the retries).
      expect(Object.values(stats.faultsFired).reduce((a, b) => a + b, 0)).toBe(6);
      expect(results[1]!.events.some((e) => e.type === 'step:retry')).toBe(true);
      // The same client id gets the token a run used (the emulator keeps it while valid).
      for (const reporter of reporters) expect(everything).not.toContain(await anonymousToken(server.url, clientId(reporter)));
      expect(everything).not.toContain('nmv_usr_');
    } finally {
      await stopServer(server);
    }
  });
});
