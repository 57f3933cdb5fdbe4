// Provenance records and run reports around the edges of a run, through the built CLI on the
// in-process local backend: a resumed job keeps one record (and says which steps an earlier run
// did), media facts are probed once per content, the GitHub step summary links the report, `--no-report` writes none, and `talk report`
// with no workflow reports every workflow the state dir has runs of.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { batchWorkspace } from '../helpers/serve.js';
import { testTools } from '../helpers/media.js';
import { readRecord } from '../helpers/records.js';

let dir: string | undefined;

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}, 120_000);

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A `foreach` batch of `items` items (`faces/pNN.jpg` + `voices/pNN.mp3`) on the local backend. */
async function workspace(items: number): Promise<string> {
  dir = await batchWorkspace(items, { name: 'edges', concurrency: 1, top: ['backend: local'] });
  return dir;
}

interface Record {
  session: { id: string };
  render: { id: string; ids: string[] };
  timings: { step: string; kind: string; resumed?: boolean }[];
  instructions: { creditsUsed: number }[];
}

describe('provenance and reports at the edges of a run (built CLI)', () => {
  it('a job resumed after a failed render keeps one record, marks the steps an earlier run did, and keeps its session', async () => {
    const cwd = await workspace(1);
    // The render is refused once (400 is not retried): the job fails after its paid turn.
    const first = await runCli(['run', 'batch.yaml', '--json'], { cwd, env: { TALK_LOCAL_FAULTS: 'render:status=400:x1' } });
    expect(first.code, first.stderr).toBe(1);
    expect(existsSync(path.join(cwd, 'out', 'p00.talk.json'))).toBe(false);

    const again = await runCli(['run', 'batch.yaml', '--json'], { cwd });
    expect(again.code, again.stderr).toBe(0);
    expect((await readdir(path.join(cwd, 'out'))).filter((f) => f.endsWith('.talk.json'))).toEqual(['p00.talk.json']);
    const record = await readRecord<Record>(path.join(cwd, 'out', 'p00.talk.json'));
    const status = JSON.parse((await runCli(['status', 'batch.yaml', '--json'], { cwd })).stdout) as { runs: { jobs: { [id: string]: { sessionId: string } } }[] };
    expect(Object.values(status.runs[0]!.jobs)[0]!.sessionId).toBe(record.session.id);
    // The upload and the turn were the first run's; only the export ran again.
    expect(record.timings.filter((t) => t.kind !== 'export').every((t) => t.resumed === true)).toBe(true);
    expect(record.timings.find((t) => t.kind === 'export')?.resumed).toBeUndefined();
    expect(record.instructions[0]!.creditsUsed).toBe(100);

    // A third run has nothing to do and still leaves one record, the same render.
    const third = await runCli(['run', 'batch.yaml', '--json'], { cwd });
    expect(third.code, third.stderr).toBe(0);
    expect((await readdir(path.join(cwd, 'out'))).filter((f) => f.endsWith('.talk.json'))).toEqual(['p00.talk.json']);
    expect((await readRecord<Record>(path.join(cwd, 'out', 'p00.talk.json'))).render.id).toBe(record.render.id);
  });

  it('media facts come by content: inputs preflight probed start no ffprobe, each distinct output one', async () => {
    const cwd = await workspace(3);
    // The real ffprobe behind a wrapper that notes what it was asked to read.
    const calls = path.join(cwd, 'ffprobe-calls.txt');
    const ffprobe = path.join(cwd, 'ffprobe-logged');
    await writeFile(ffprobe, `#!/bin/sh\nfor a; do last="$a"; done\necho "$last" >> '${calls}'\nexec '${testTools().ffprobe}' "$@"\n`, { mode: 0o755 });
    const run = await runCli(['run', 'batch.yaml', '--json'], { cwd, env: { FFPROBE_PATH: ffprobe, TALK_LOCAL_ANONYMOUS_CREDITS: '1000' } });
    expect(run.code, run.stderr).toBe(0);

    const probed = (await readFile(calls, 'utf8')).split('\n').filter((line) => line !== '');
    const ofInputs = probed.filter((f) => /\/(faces|voices)\//.test(f));
    const ofOutputs = probed.filter((f) => f.startsWith(path.join(cwd, 'out')));
    // Three copies of one portrait and of one voice: two contents, probed once each, by preflight.
    expect(ofInputs).toHaveLength(2);
    const records = await Promise.all(['p00', 'p01', 'p02'].map((stem) => readRecord<{ inputs: { media?: { width?: number; duration?: number } }[]; video: { sha256: string; duration?: number; width?: number } }>(path.join(cwd, 'out', `${stem}.talk.json`))));
    expect(ofOutputs).toHaveLength(new Set(records.map((r) => r.video.sha256)).size);
    // And every record still has its facts.
    for (const record of records) {
      expect(record.video.duration).toBeGreaterThan(0);
      expect(record.video.width).toBeGreaterThan(0);
      expect(record.inputs.map((i) => i.media?.width ?? i.media?.duration)).toEqual([expect.any(Number), expect.any(Number)]);
    }
  });

  it('the GitHub step summary links the report; --no-report writes none and links none', async () => {
    const cwd = await workspace(2);
    const summary = path.join(cwd, 'summary.md');
    const gh = { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary };
    const run = await runCli(['run', 'batch.yaml', '--reporter', 'plain'], { cwd, env: { ...gh, TALK_LOCAL_ANONYMOUS_CREDITS: '1000' } });
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(path.join(cwd, 'out', 'report.html'))).toBe(true);
    expect(await readFile(summary, 'utf8')).toMatch(/\[[^\]]*report[^\]]*\]\([^)]*out\/report\.html\)|out\/report\.html/);

    await rm(path.join(cwd, 'out', 'report.html'));
    await rm(summary);
    const quiet = await runCli(['run', 'batch.yaml', '--reporter', 'plain', '--no-report'], { cwd, env: gh });
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(existsSync(path.join(cwd, 'out', 'report.html'))).toBe(false);
    expect(await readFile(summary, 'utf8')).not.toContain('report.html');
    expect(quiet.stdout).not.toContain('report.html');
  });

  it('talk report with no workflow reports each workflow with a run in the state dir, and says what to do when there is none', async () => {
    const cwd = await workspace(1);
    const none = await runCli(['report'], { cwd });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no runs recorded in .talk');
    expect(none.stderr).toContain('talk report examples/batch.yaml');

    const run = await runCli(['run', 'batch.yaml', '--json', '--no-report'], { cwd });
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(path.join(cwd, 'out', 'report.html'))).toBe(false);
    const bare = await runCli(['report'], { cwd });
    expect(bare.code, bare.stderr).toBe(0);
    expect(bare.stdout).toBe('report: out/report.html\n');
    const html = await readFile(path.join(cwd, 'out', 'report.html'), 'utf8');
    expect(html).toContain('p00');
    const json = await runCli(['report', '--json'], { cwd });
    expect(JSON.parse(json.stdout)).toEqual({ reports: ['out/report.html'] });
  });
});
