// Start-up and validation cost of the built CLI, against bare Node. Prints medians of
// interleaved runs (each round runs every command once, so a change in the machine's load
// touches all of them alike); asserts nothing (figures go in bench/notes/validate.md).
//
//   npm run bench -- validate            (BENCH_RUNS=n rounds, default 15)
//   BENCH_BASELINE=<another checkout, built> npm run bench -- validate
//
// "warm": the user's caches (compile cache of bin/talk.js, ffprobe verdicts) filled by an
// earlier run, as after the first use; "cold": an empty cache folder every run, as on the very
// first start. BENCH_BASELINE adds the same commands run from another checkout's bin/talk.js
// (e.g. the commit before a change), interleaved with these.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { loadWorkflow } from '../src/workflow/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.env['BENCH_RUNS'] ?? 15);
const baseline = process.env['BENCH_BASELINE'];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

if (!existsSync(path.join(root, 'dist', 'talk.js'))) {
  console.log('build first: npm run build');
  process.exit(1);
}

const hello = 'examples/hello.yaml';
const five = ['hello', 'batch', 'graph', 'ci', 'watch'].map((n) => `examples/${n}.yaml`);
const warmHome = mkdtempSync(path.join(tmpdir(), 'talk-bench-validate-home-'));

interface Case {
  label: string;
  args: string[];
  /** A fresh cache folder for every run. */
  cold?: boolean;
}

const cases: Case[] = [{ label: 'node -e 0', args: ['-e', '0'] }];
for (const [tag, bin] of [['', path.join(root, 'bin', 'talk.js')], ...(baseline ? [['baseline ', path.join(path.resolve(baseline), 'bin', 'talk.js')]] : [])] as [string, string][]) {
  cases.push(
    { label: `${tag}talk --version`, args: [bin, '--version'] },
    { label: `${tag}talk --help`, args: [bin, '--help'] },
    { label: `${tag}talk validate ${hello}`, args: [bin, 'validate', hello] },
    { label: `${tag}talk validate ${hello}, cold`, args: [bin, 'validate', hello], cold: true },
    { label: `${tag}talk validate examples/*.yaml (5 files)`, args: [bin, 'validate', ...five] },
  );
}

function runOnce(c: Case): number {
  const home = c.cold ? mkdtempSync(path.join(tmpdir(), 'talk-bench-validate-cold-')) : warmHome;
  try {
    const env = { ...process.env, HOME: home, XDG_CACHE_HOME: path.join(home, '.cache') };
    const start = performance.now();
    const result = spawnSync(process.execPath, c.args, { cwd: root, stdio: 'ignore', env });
    const ms = performance.now() - start;
    if (result.status !== 0 && !c.args.includes('-e')) throw new Error(`${c.args.join(' ')} exited ${result.status}`);
    return ms;
  } finally {
    if (c.cold) rmSync(home, { recursive: true, force: true });
  }
}

// One unmeasured round fills the warm caches.
for (const c of cases) runOnce(c);
const samples = cases.map(() => [] as number[]);
for (let round = 0; round < runs; round += 1) cases.forEach((c, i) => samples[i]?.push(runOnce(c)));
rmSync(warmHome, { recursive: true, force: true });

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`${runs} interleaved rounds · load average ${load}`);
const node = median(samples[0] ?? []);
cases.forEach((c, i) => {
  const ms = median(samples[i] ?? []);
  console.log(`${c.label.padEnd(58)} ${ms.toFixed(0).padStart(5)} ms  ${(ms / node).toFixed(2)}× node`);
});

// In-process: the loader alone, warm (what `talk run` pays before its first request).
const loads: number[] = [];
for (let i = 0; i < 50; i += 1) {
  const start = performance.now();
  const { workflow } = await loadWorkflow('examples/batch.yaml', { cwd: root, env: {} });
  loads.push(performance.now() - start);
  if (!workflow) throw new Error('examples/batch.yaml did not validate');
}
console.log(`${'loadWorkflow(examples/batch.yaml), warm, in process'.padEnd(58)} ${median(loads).toFixed(2).padStart(5)} ms (median of 50)`);
