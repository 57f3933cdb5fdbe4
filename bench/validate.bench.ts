// Start-up and validation cost of the built CLI, against bare Node. Prints medians; asserts
// nothing (figures go in bench/notes/validate.md). Run: npm run bench -- validate
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { loadWorkflow } from '../src/workflow/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'talk.js');
const runs = Number(process.env['BENCH_RUNS'] ?? 15);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function timeSpawn(args: string[]): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const start = performance.now();
    const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'ignore' });
    samples.push(performance.now() - start);
    if (result.status !== 0 && !args.includes('-e')) throw new Error(`${args.join(' ')} exited ${result.status}`);
  }
  return median(samples);
}

if (!existsSync(path.join(root, 'dist', 'talk.js'))) {
  console.log('build first: npm run build');
  process.exit(1);
}

const rows: [string, number][] = [
  ['node -e 0', timeSpawn(['-e', '0'])],
  ['talk --version', timeSpawn([bin, '--version'])],
  ['talk validate examples/hello.yaml', timeSpawn([bin, 'validate', 'examples/hello.yaml'])],
  ['talk validate examples/*.yaml (5 files)', timeSpawn([bin, 'validate', ...['hello', 'batch', 'graph', 'ci', 'watch'].map((n) => `examples/${n}.yaml`)])],
];
for (const [label, ms] of rows) console.log(`${label.padEnd(42)} ${ms.toFixed(0).padStart(5)} ms (median of ${runs})`);

// In-process: the loader alone, warm (what `talk run` pays before its first request).
const samples: number[] = [];
for (let i = 0; i < 50; i += 1) {
  const start = performance.now();
  const { workflow } = await loadWorkflow('examples/batch.yaml', { cwd: root, env: {} });
  samples.push(performance.now() - start);
  if (!workflow) throw new Error('examples/batch.yaml did not validate');
}
console.log(`${'loadWorkflow(examples/batch.yaml), warm'.padEnd(42)} ${median(samples).toFixed(2).padStart(5)} ms (median of 50)`);
