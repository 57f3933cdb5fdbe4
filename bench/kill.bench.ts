// Kill -9 trials of a batch on one account (issue: disconnect recovery must not take another
// job's charge for this job's turn). 20 seeded kill moments in the first 7 s of a 3-item
// `foreach` at concurrency 2 against a local backend at cloud-like latencies (upload 300 ms,
// SSE 900 ms, render 2 s, download 500 ms); each trial is resumed to the end and must show one
// turn, one render and one video per item, and the backend's credits equal to the runner's.
// Prints the seed and one line per trial. BENCH_KILL_SEED replays a seed, BENCH_KILL_TRIALS
// sets the count. Needs the built CLI (`npm run bench` builds it).
import { runKillTrials } from '../test/helpers/kill-trials.js';

const seed = Number(process.env.BENCH_KILL_SEED ?? Date.now() % 1_000_000);
const trials = Number(process.env.BENCH_KILL_TRIALS ?? 20);
console.log(`seed ${seed}, ${trials} trials`);
const started = performance.now();
const results = await runKillTrials({ seed, trials, latency: { upload: 300, sse: 900, render: 2000, download: 500 }, killWithinMs: 7_000 }, (r) => {
  const verdict = r.problems.length === 0 ? 'clean' : `PROBLEM: ${r.problems.join('; ')}`;
  console.log(
    `trial ${String(r.trial).padStart(2)}  kill at ${String(r.killAtMs).padStart(4)} ms${r.killed ? '' : ' (run had ended)'}  turns ${r.messages}  renders ${r.renders}  credits backend ${r.backendCredits} / runner ${r.runnerCredits ?? '-'}  ${verdict}`,
  );
});
const clean = results.filter((r) => r.problems.length === 0).length;
console.log(`${clean} of ${results.length} trials clean (seed ${seed}) in ${((performance.now() - started) / 1000).toFixed(0)} s`);
process.exitCode = clean === results.length ? 0 : 1;
