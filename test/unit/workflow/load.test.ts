// loadWorkflow against real files in a temp folder: what comes back for good files, and a
// located diagnostic (never an exception) for every kind of bad one.
import { mkdtemp, mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatDiagnosticLine } from '../../../src/core/diagnostics.js';
import { loadWorkflow, nodeWorkflowFs, type WorkflowFs } from '../../../src/workflow/index.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'talk-load-'));
  await mkdir(path.join(dir, 'assets'));
  await writeFile(path.join(dir, 'assets', 'face.jpg'), 'x');
  await writeFile(path.join(dir, 'assets', 'voice.mp3'), 'x');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SHORT = `inputs:
  portrait: assets/face.jpg
  voice: assets/voice.mp3
instructions:
  - Make this photo talk
`;

async function load(name: string, text: string | Uint8Array, options: Parameters<typeof loadWorkflow>[1] = {}) {
  await writeFile(path.join(dir, name), text);
  return loadWorkflow(name, { cwd: dir, env: {}, ...options });
}

function lines(result: { diagnostics: Parameters<typeof formatDiagnosticLine>[0][] }): string[] {
  return result.diagnostics.map(formatDiagnosticLine);
}

describe('loading a valid short-form workflow', () => {
  it('compiles it to upload, instruction and export steps with defaults', async () => {
    const result = await load('hello.yaml', `${SHORT}  - Loop it\n`);
    expect(result.diagnostics).toEqual([]);
    const wf = result.workflow!;
    expect(wf.name).toBe('hello');
    expect(wf.form).toBe('short');
    expect(wf.backend).toEqual({ kind: 'cloud' });
    expect(wf.language).toBe('en');
    expect(wf.concurrency).toBe(4);
    expect(wf.jobs).toEqual([{ id: 'main' }]);
    expect(wf.steps.map((s) => [s.id, s.kind, s.needs])).toEqual([
      ['upload-portrait', 'upload', []],
      ['upload-voice', 'upload', []],
      ['instruction-1', 'instruction', ['upload-portrait', 'upload-voice']],
      ['instruction-2', 'instruction', ['upload-portrait', 'upload-voice', 'instruction-1']],
      ['export', 'export', ['instruction-2']],
    ]);
    const exportStep = wf.steps[4];
    expect(exportStep).toMatchObject({ kind: 'export', format: 'mp4', quality: 'high', resolution: '1080p', timeoutMs: 30 * 60_000, retries: 2 });
    // Steps remember where they are written, for annotations.
    expect(wf.steps[2]?.location).toMatchObject({ file: 'hello.yaml', line: 5, col: 5 });
    expect(wf.steps[0]?.location).toMatchObject({ line: 2, col: 3 });
  });

  it('applies --var over vars and keeps only the env variables it reads', async () => {
    const text = `vars:\n  who: Ada\n  n: 3\n${SHORT.replace('Make this photo talk', 'Make ${{ vars.who }} talk ${{ vars.n }} ${{ env.TALK_T }}')}`;
    const result = await load('vars.yaml', text, { vars: { who: 'Grace' }, env: { TALK_T: 'now', SECRET_TOKEN: 'nmv_usr_x', LANG: 'zh_CN.UTF-8' } });
    expect(result.diagnostics).toEqual([]);
    expect(result.workflow?.vars).toEqual({ who: 'Grace', n: '3' });
    expect(result.workflow?.env).toEqual({ TALK_T: 'now' });
    expect(result.workflow?.language).toBe('zh-CN');
  });

  it('reads durations, limits, budget, backend URL and URL inputs', async () => {
    const text = `backend: http://127.0.0.1:8787/
language: pt-BR
limits: {uploads: 2}
budget: {credits: 150}
defaults: {timeout: 90, retries: 0}
inputs:
  portrait: {url: "https://cdn.example.com/a.jpg"}
  voice: assets/voice.mp3
instructions: [Make this photo talk]
`;
    const result = await load('misc.yaml', text);
    expect(result.diagnostics).toEqual([]);
    const wf = result.workflow!;
    expect(wf.backend).toEqual({ kind: 'url', url: 'http://127.0.0.1:8787' });
    expect(wf.language).toBe('pt-BR');
    expect(wf.limits).toEqual({ uploads: 2, renders: undefined });
    expect(wf.budget).toEqual({ credits: 150 });
    expect(wf.defaults).toEqual({ timeoutMs: 90_000, retries: 0 });
    expect(wf.inputs.map((i) => [i.name, i.kind])).toEqual([
      ['portrait', 'url'],
      ['voice', 'path'],
    ]);
  });
});

describe('foreach and watch', () => {
  it('makes one job per match, ids from the stem made unique, inputs from the keys', async () => {
    await mkdir(path.join(dir, 'faces'));
    await mkdir(path.join(dir, 'voices'));
    for (const f of ['bob.jpg', 'bob.png', 'amy.jpg', '.hidden.jpg', 'notes.txt']) await writeFile(path.join(dir, 'faces', f), 'x');
    for (const f of ['bob.mp3', 'amy.mp3']) await writeFile(path.join(dir, 'voices', f), 'x');
    const text = `foreach:
  portrait: faces/*.{jpg,png}
  voice: voices/\${{ item.portrait.stem }}.mp3
instructions: [Make this photo talk]
export:
  output: out/\${{ item.portrait.name }}.mp4
`;
    const result = await load('batch.yaml', text);
    expect(lines(result)).toEqual([]);
    const wf = result.workflow!;
    expect(wf.jobs).toEqual([
      { id: 'amy', item: { portrait: path.join(dir, 'faces', 'amy.jpg'), voice: path.join(dir, 'voices', 'amy.mp3') } },
      { id: 'bob', item: { portrait: path.join(dir, 'faces', 'bob.jpg'), voice: path.join(dir, 'voices', 'bob.mp3') } },
      { id: 'bob-2', item: { portrait: path.join(dir, 'faces', 'bob.png'), voice: path.join(dir, 'voices', 'bob.mp3') } },
    ]);
    expect(wf.inputs.map((i) => [i.name, i.usesItem])).toEqual([
      ['portrait', true],
      ['voice', true],
    ]);
    expect(wf.foreachKeys).toEqual(['portrait', 'voice']);
  });

  it('reports the default output colliding when two items share a stem', async () => {
    await mkdir(path.join(dir, 'faces'));
    for (const f of ['bob.jpg', 'bob.png']) await writeFile(path.join(dir, 'faces', f), 'x');
    const result = await load('clash.yaml', 'foreach:\n  portrait: faces/*\ninstructions: [Make this photo talk]\n');
    expect(lines(result)).toEqual(['clash.yaml:3:1 error job `bob` and job `bob-2` would both write out/bob.mp4']);
  });

  it('exposes watch settings with defaults and durations in ms, and has no jobs of its own', async () => {
    const text = `watch:
  settle: 500ms
  scan_interval: 1m
  roles:
    face: [JPG]
    audio: [mp3]
instructions: [Make this photo talk]
`;
    const result = await load('watch.yaml', text);
    expect(lines(result)).toEqual([]);
    expect(result.workflow?.jobs).toEqual([]);
    expect(result.workflow?.watch).toEqual({
      pairing: 'stem',
      roles: { face: ['jpg'], audio: ['mp3'] },
      manifest: 'job.yaml',
      settleMs: 500,
      bundleTimeoutMs: 600_000,
      scanIntervalMs: 60_000,
      maxAttempts: 3,
      outputDir: 'out',
      processedDir: 'processed',
      failedDir: 'failed',
    });
    expect(result.workflow?.inputs.map((i) => i.name)).toEqual(['face', 'audio']);
  });

  it('checks watch templates against the roles', async () => {
    const result = await load('watch-bad.yaml', 'watch: {}\ninputs:\n  portrait: ${{ item.face.path }}\ninstructions: [Make this photo talk]\n');
    expect(lines(result)).toEqual(['watch-bad.yaml:3:13 error unknown item key `item.face`']);
  });
});

describe('files that are not workflows', () => {
  it('a missing file', async () => {
    const result = await loadWorkflow('nope.yaml', { cwd: dir });
    expect(lines(result)).toEqual(['nope.yaml:1:1 error cannot read the workflow: no such file']);
  });

  it('a folder', async () => {
    await mkdir(path.join(dir, 'folder.yaml'));
    const result = await loadWorkflow('folder.yaml', { cwd: dir });
    expect(lines(result)).toEqual(['folder.yaml:1:1 error this is a folder, not a workflow file']);
  });

  it('an unreadable file', async () => {
    // Tests may run as root, which reads anything; the rules read through WorkflowFs, so the
    // permission error comes from there.
    const denied: WorkflowFs = {
      ...nodeWorkflowFs,
      readFile: () => Promise.reject(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })),
    };
    await writeFile(path.join(dir, 'locked.yaml'), SHORT);
    const result = await loadWorkflow('locked.yaml', { cwd: dir, fs: denied });
    expect(lines(result)).toEqual(['locked.yaml:1:1 error cannot read the workflow: permission denied']);
  });

  it('a multi-megabyte file, refused before it is read', async () => {
    const result = await load('huge.yaml', `${SHORT}# ${'x'.repeat(3 * 1024 * 1024)}\n`);
    expect(lines(result)).toEqual(['huge.yaml:1:1 error the file is 3.0 MB; a workflow file may be at most 1.0 MB']);
  });

  it('a file outside the cwd is shown with a relative path', async () => {
    await writeFile(path.join(dir, 'x.yaml'), 'version: 3\ninstructions: [hi]\n');
    await mkdir(path.join(dir, 'sub'));
    const result = await loadWorkflow('../x.yaml', { cwd: path.join(dir, 'sub') });
    expect(lines(result)).toEqual(['../x.yaml:1:10 error `version` must be 1']);
    expect(result.diagnostics[0]?.sourceLine).toBe('version: 3');
  });
});

describe('input files', () => {
  it('refuses a file over 200 MB (sparse, so the test stays small)', async () => {
    await writeFile(path.join(dir, 'assets', 'big.mp4'), '');
    await truncate(path.join(dir, 'assets', 'big.mp4'), 200 * 1024 * 1024 + 1);
    const result = await load('big.yaml', SHORT.replace('assets/voice.mp3', 'assets/big.mp4'));
    expect(lines(result)).toEqual(['big.yaml:3:10 error input `voice`: assets/big.mp4 is 200.0 MB; the backend accepts at most 200 MB']);
    expect(result.diagnostics[0]?.hint).toMatch(/compress or trim/);
  });

  it('accepts a file of exactly 200 MB', async () => {
    await writeFile(path.join(dir, 'assets', 'edge.mp4'), '');
    await truncate(path.join(dir, 'assets', 'edge.mp4'), 200 * 1024 * 1024);
    const result = await load('edge.yaml', SHORT.replace('assets/voice.mp3', 'assets/edge.mp4'));
    expect(result.diagnostics).toEqual([]);
  });

  it('reports every problem of a file at once, sorted by position', async () => {
    const text = `version: 1
inputs:
  portrait: assets/missing.jpg
  voice: assets/voice.wma
instructions:
  - Say \${{ vars.nope }}
export:
  output: ../x.mp4
`;
    const result = await load('many.yaml', text);
    expect(lines(result)).toEqual([
      'many.yaml:3:13 error input `portrait`: file not found: assets/missing.jpg',
      'many.yaml:4:10 error input `voice`: file not found: assets/voice.wma',
      'many.yaml:6:9 error unknown variable `vars.nope`',
      'many.yaml:8:11 error output ../x.mp4 is outside the workflow\'s folder',
    ]);
  });
});

describe('a misspelt backend', () => {
  it('`backend: lcoal` is refused with "did you mean `local`"', async () => {
    const result = await load('w.yaml', `backend: lcoal\n${SHORT}`);
    expect(result.workflow).toBeUndefined();
    expect(result.diagnostics.map((d) => [d.line, d.hint])).toEqual([[1, 'did you mean `local`? (found "lcoal")']]);
  });

  it('an undeclared --var is a warning that names the declared variables', async () => {
    const result = await load('w.yaml', `vars:\n  release: "1"\n${SHORT}`, { vars: { relase: '2' } });
    expect(result.workflow).toBeDefined();
    expect(result.diagnostics.map((d) => [d.severity, d.message])).toEqual([['warning', '--var relase is not a variable of this workflow (it declares: release)']]);
  });
});

describe('a foreach whose glob matches nothing', () => {
  it('still checks its item.* references: an unknown key is an error', async () => {
    const text = `foreach:\n  portrait: faces/*.jpg\n  voice: voices/\${{ item.face.stem }}.mp3\ninstructions:\n  - Make this photo talk\n`;
    const result = await load('w.yaml', text);
    expect(result.workflow).toBeUndefined();
    const errors = result.diagnostics.filter((d) => d.severity === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.line).toBe(3);
    expect(errors[0]?.message).toMatch(/item\.face/);
    expect(result.diagnostics.some((d) => d.severity === 'warning' && /matches no files/.test(d.message))).toBe(true);
  });

  it('with the right key it is valid, with no jobs', async () => {
    const text = `foreach:\n  portrait: faces/*.jpg\n  voice: voices/\${{ item.portrait.stem }}.mp3\ninstructions:\n  - Make this photo talk\n`;
    const result = await load('w.yaml', text);
    expect(result.workflow?.jobs).toEqual([]);
  });
});

