// The built CLI (`node bin/talk.js`, after `npm run build`) in a temp folder with a scrubbed
// environment: exit codes 0/2 and located output for validate, plan, schema, init, --version.
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin', 'talk.js');
let dir: string;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function talk(args: string[], cwd = dir): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd,
      // HOME is the temp folder even when the command runs in the repository (its caches stay out of it).
      env: { PATH: process.env['PATH'] ?? '', HOME: dir, LANG: 'C.UTF-8', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-validate-'));
  await cp(path.join(root, 'examples', 'assets'), path.join(dir, 'assets'), { recursive: true });
  await cp(path.join(root, 'examples', 'hello.yaml'), path.join(dir, 'hello.yaml'));
  await writeFile(
    path.join(dir, 'broken.yaml'),
    `name: broken
inputs:
  portrait: assets/portrait.jpg
  voice: assets/missing.mp3
steps:
  - id: up
    upload: [portrait, voice]
  - id: talk
    needs: [upload]
    instruction: Make \${{ vars.who }} talk
`,
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('talk validate (built CLI)', () => {
  it('exits 0 on a valid workflow', async () => {
    const r = await talk(['validate', 'hello.yaml']);
    expect(r).toEqual({ code: 0, stdout: 'hello.yaml: valid\n', stderr: '' });
  });

  it('keeps ffprobe\'s verdicts under HOME/.cache, and says the same from them', async () => {
    const first = await talk(['validate', 'hello.yaml']);
    const probes = path.join(dir, '.cache', 'talk', 'probes');
    expect((await readdir(probes)).filter((f) => f.endsWith('.json'))).toHaveLength(2);
    const again = await talk(['validate', 'hello.yaml']);
    expect(again).toEqual(first);
  });

  it('keeps compiled code under HOME/.cache per command; damaged cached code is compiled again and replaced', async () => {
    const first = await talk(['validate', 'hello.yaml']);
    const compile = path.join(dir, '.cache', 'talk', 'compile');
    const [build] = await readdir(compile);
    const folder = path.join(compile, build ?? '', 'validate');
    const files = (await readdir(folder)).filter((f) => f.endsWith('.cache'));
    expect(files).toContain('talk.js.cache');
    const garbage = Buffer.alloc(4096, 7);
    for (const f of files) await writeFile(path.join(folder, f), garbage);
    expect(await talk(['validate', 'hello.yaml'])).toEqual(first);
    for (const f of files) expect((await readFile(path.join(folder, f))).equals(garbage)).toBe(false);
  });

  it('exits 2 with every problem located, the line underlined and a hint', async () => {
    const r = await talk(['validate', 'hello.yaml', 'broken.yaml']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe(`broken.yaml:4:10 error input \`voice\`: file not found: assets/missing.mp3
  4 |   voice: assets/missing.mp3
    |          ^^^^^^^^^^^^^^^^^^
  hint: check the path; relative paths are resolved against the workflow file's folder

broken.yaml:9:13 error unknown step id \`upload\` in needs of \`talk\`
  9 |     needs: [upload]
    |             ^^^^^^
  hint: known steps: up, talk

broken.yaml:10:23 error unknown variable \`vars.who\`
  10 |     instruction: Make \${{ vars.who }} talk
     |                       ^^^^^^^^^^^^^^^
  hint: define it under vars: or pass --var who=value (known: (none))

broken.yaml: invalid (3 errors, 0 warnings)
hello.yaml: valid
`);
  });

  it('takes --var into account', async () => {
    const r = await talk(['validate', 'broken.yaml', '--var', 'who=Ada']);
    expect(r.code).toBe(2);
    expect(r.stdout).not.toContain('vars.who');
  });

  it('prints JSON with --json', async () => {
    const r = await talk(['validate', '--json', 'broken.yaml', 'hello.yaml']);
    expect(r.code).toBe(2);
    const parsed = JSON.parse(r.stdout) as { files: { file: string; valid: boolean; diagnostics: Record<string, unknown>[] }[] };
    expect(parsed.files.map((f) => [f.file, f.valid, f.diagnostics.length])).toEqual([
      ['broken.yaml', false, 3],
      ['hello.yaml', true, 0],
    ]);
    expect(parsed.files[0]?.diagnostics[1]).toEqual({
      file: 'broken.yaml',
      line: 9,
      col: 13,
      endLine: 9,
      endCol: 19,
      severity: 'error',
      message: 'unknown step id `upload` in needs of `talk`',
      hint: 'known steps: up, talk',
    });
  });

  it('answers a missing file without a stack trace', async () => {
    const r = await talk(['validate', 'nope.yaml']);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('nope.yaml:1:1 error cannot read the workflow: no such file');
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/\n\s+at /);
  });

  it('accepts every example in the repository', async () => {
    const r = await talk(['validate', 'examples/hello.yaml', 'examples/batch.yaml', 'examples/graph.yaml', 'examples/ci.yaml', 'examples/watch.yaml'], root);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(5);
  });
});

describe('talk plan, schema, init, --version (built CLI)', () => {
  it('plans a workflow', async () => {
    const r = await talk(['plan', 'hello.yaml']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('plan hello-avatar (hello.yaml)');
    expect(r.stdout).toMatch(/instruction-1 +upload-portrait, upload-voice +"Make this photo talk/);
    expect(r.stdout).toContain('credits now: about 100, the whole workflow about 100;');
  });

  it('refuses to plan an invalid workflow, exit 2', async () => {
    const r = await talk(['plan', 'broken.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('broken.yaml:9:13 error unknown step id `upload` in needs of `talk`');
  });

  it('prints the schema file', async () => {
    const r = await talk(['schema']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(await readFile(path.join(root, 'schemas', 'workflow.schema.json'), 'utf8')));
  });

  it('writes a starter that validates, and will not overwrite it', async () => {
    const first = await talk(['init', 'starter/first.yaml']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('wrote starter/first.yaml');
    const check = await talk(['validate', 'starter/first.yaml']);
    expect(check).toMatchObject({ code: 0, stdout: 'starter/first.yaml: valid\n' });
    const again = await talk(['init', 'starter/first.yaml']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('starter/first.yaml already exists');
  });

  it('prints its version', async () => {
    const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
    const r = await talk(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });
});
