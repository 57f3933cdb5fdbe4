// Provenance records and the run report for a 10,000-item plan: how long writing every record
// takes (one small MP4 stands in for every output, so ffprobe runs once and the figure is the
// per-record cost), and how long report.html takes when only 3 outputs exist (frames are made
// only for outputs that exist). Prints figures; asserts nothing. Run: npm run bench -- report
import { copyFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import { provenanceDeps, findMediaTools } from '../src/commands/media-tools.js';
import { writeRunReport } from '../src/commands/report.js';
import { cachedHasher, hashFile, writeProvenance } from '../src/runner/index.js';
import type { Plan, PlanJob } from '../src/plan/index.js';
import type { RunState, StateStore } from '../src/state/index.js';
import { makeTestMedia } from '../test/helpers/media.js';
import { runTool } from '../src/local-backend/ffmpeg.js';

const ITEMS = Number(process.env['BENCH_ITEMS'] ?? 10_000);
const dir = await mkdtemp(path.join(tmpdir(), 'talk-bench-report-'));
try {
  const media = await makeTestMedia(path.join(tmpdir(), 'talk-bench-media'));
  const tools = findMediaTools(process.env);
  if (!tools) throw new Error('ffmpeg not found');
  const mp4 = path.join(dir, 'sample.mp4');
  await runTool(tools.ffmpeg, ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25:duration=2', '-pix_fmt', 'yuv420p', mp4]);
  const workflowPath = path.join(dir, 'batch.yaml');
  await writeFile(workflowPath, 'version: 1\n');
  const sha = await hashFile(mp4);
  const bytes = (await stat(mp4)).size;
  const jobs: PlanJob[] = [];
  const state: RunState = { version: 1, workflowPath, name: 'bench', startedAt: new Date().toISOString(), updatedAt: new Date().toISOString(), finished: true, creditsUsed: 0, jobs: {} };
  for (let i = 0; i < ITEMS; i += 1) {
    const id = `item-${String(i).padStart(5, '0')}`;
    const output = path.join(dir, 'out', `${id}.mp4`);
    jobs.push({
      id,
      item: { portrait: media.portrait, voice: media.voice },
      steps: [
        { id: 'upload', kind: 'upload', needs: [], timeoutMs: 1, retries: 0, inputs: [{ name: 'portrait', path: media.portrait }, { name: 'voice', path: media.voice }] },
        { id: 'talk', kind: 'instruction', needs: [], timeoutMs: 1, retries: 0, text: 'Make this photo talk using my voiceover', turnClass: 'generate', estimatedCredits: 100 },
        { id: 'export', kind: 'export', needs: [], timeoutMs: 1, retries: 0, format: 'mp4', quality: 'low', resolution: '720p', output },
      ],
    } as unknown as PlanJob);
    state.jobs[id] = {
      status: 'done',
      sessionId: `s-${i}`,
      steps: {
        talk: { kind: 'instruction', status: 'done', attempts: 1, turn: { draftRevision: 'x', sentAt: new Date().toISOString(), reply: 'ready', tools: ['generate_video'], creditsUsed: 100 } },
        export: { kind: 'export', status: 'done', attempts: 1, render: { id: `r-${i}`, phase: 'completed' }, renderIds: [`r-${i}`], output: { path: i < 3 ? output : mp4, bytes, sha256: sha } },
      },
    };
  }
  const plan = { workflowPath, workflowDir: dir, name: 'bench', backend: { kind: 'local' }, language: 'en', concurrency: 1, limits: { uploads: 1, renders: 1 }, jobs } as unknown as Plan;
  const store = { job: (id: string) => state.jobs[id] } as unknown as StateStore;
  const deps = await provenanceDeps(process.env, { talk: '0.0.0', node: process.version }, true);
  const hasher = cachedHasher(hashFile);
  let t = performance.now();
  // As the runner does: each job writes its record when it finishes, 20 jobs in flight.
  const limit = pLimit(20);
  await Promise.all(jobs.map((job) => limit(() => writeProvenance({ plan, job, store, timings: new Map(), backend: { id: 'local', url: 'http://127.0.0.1:1' }, hasher, signal: new AbortController().signal }, deps))));
  const recordsMs = performance.now() - t;
  // For the report, only the first 3 outputs exist.
  for (let i = 0; i < 3; i += 1) await copyFile(mp4, path.join(dir, 'out', `item-0000${i}.mp4`));
  for (let i = 0; i < ITEMS; i += 1) {
    const ex = state.jobs[jobs[i]!.id]!.steps['export']!;
    ex.output = { path: path.join(dir, 'out', `${jobs[i]!.id}.mp4`), bytes, sha256: sha };
  }
  t = performance.now();
  const file = await writeRunReport({ plan, state, tools, cwd: dir });
  const reportMs = performance.now() - t;
  const reportBytes = (await stat(file)).size;
  console.log(`provenance records: ${ITEMS} written in ${(recordsMs / 1000).toFixed(2)} s (20 jobs in flight)`);
  console.log(`report.html: ${ITEMS} cards (3 with frames) in ${(reportMs / 1000).toFixed(2)} s, ${(reportBytes / 1e6).toFixed(1)} MB`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
