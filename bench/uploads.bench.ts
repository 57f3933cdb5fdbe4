// One upload per file per account, and preflight's cost on a big batch.
//
//   node --import tsx bench/uploads.bench.ts [--items 200] [--portrait-mb 5] [--concurrency 20] [--rounds 3] [--big 10000]
//
// Part 1: a batch of `--items` jobs sharing one `--portrait-mb` MB portrait (each with its own
// small voice-over), uploads only, against `talk serve` in its own process (as the real service
// is), at `--concurrency`. "before" is the backend client as it was (every job sends the
// portrait), "after" the same client behind the upload cache (a fresh cache file each round).
// Figures: bytes the backend received in file uploads (its `uploadBytes` counter), URL uploads,
// wall time; median of `--rounds` rounds, before and after alternating.
//
// Part 2: loading a `--big`-item workflow (10,000 items sharing one portrait and one voice)
// without preflight and with it (cold: nothing probed before), and a variant whose voices are
// 10,000 distinct paths (hard links) to the same bytes: every path hashed, still 2 probes.
// Goal: under 2 s for the probes of 2 distinct files.
//
// Figures and conditions: bench/README.md.
import { link, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createBackendClient, createTokenProvider, uploadAccount, withUploadCache } from '../src/backend/index.js';
import type { BackendClient } from '../src/backend/types.js';
import type { MediaInfo } from '../src/core/media-tools.js';
import { loadWorkflow, type PreflightStats } from '../src/workflow/index.js';
import { planRun } from '../src/plan/index.js';
import { openStateStore } from '../src/state/index.js';
import { executePlan } from '../src/runner/index.js';
import { jpegWithComment, makeTestMedia } from '../test/helpers/media.js';
import { serveProcess } from './lib/serve.js';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '200' },
    'portrait-mb': { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    big: { type: 'string', default: '10000' },
  },
});
const items = Number(values.items);
const portraitMb = Number(values['portrait-mb']);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const bigItems = Number(values.big);

const root = await mkdtemp(path.join(tmpdir(), 'talk-uploads-bench-'));
const media = await makeTestMedia(path.join(root, 'media'));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** An MP3 with an ID3v1 tag naming `title`: the same sound as distinct content. */
function taggedMp3(mp3: Buffer, title: string): Buffer {
  const tag = Buffer.alloc(128);
  tag.write('TAG', 0, 'latin1');
  tag.write(title.slice(0, 30), 3, 'latin1');
  return Buffer.concat([mp3, tag]);
}

console.log(`machine: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

// ── Part 1: a batch sharing one big portrait ────────────────────────────────────────────────
{
  const dir = path.join(root, 'batch');
  await mkdir(path.join(dir, 'voices'), { recursive: true });
  // A real JPEG padded to size with comment segments (each at most 64 KiB), so it still decodes.
  let portrait: Buffer = await readFile(media.portrait);
  for (let i = 0; portrait.length < portraitMb * 1024 * 1024; i += 1) portrait = jpegWithComment(portrait, `${i} `.padEnd(65_000, 'x'));
  await writeFile(path.join(dir, 'portrait.jpg'), portrait);
  const mp3 = await readFile(media.voice);
  for (let i = 0; i < items; i += 1) await writeFile(path.join(dir, 'voices', `v${String(i).padStart(4, '0')}.mp3`), taggedMp3(mp3, `voice ${i}`));
  const file = path.join(dir, 'batch.yaml');
  await writeFile(
    file,
    ['name: shared-portrait', 'foreach:', '  voice: voices/*.mp3', 'inputs:', '  portrait: portrait.jpg', '  voice: ${{ item.voice.path }}', 'steps:', '  - id: up', '    upload: [portrait, voice]', ''].join('\n'),
  );
  const { workflow, diagnostics } = await loadWorkflow(file, { env: {}, cwd: dir });
  if (!workflow) throw new Error(diagnostics.map((d) => d.message).join('; '));
  const serve = await serveProcess(path.join(root, 'serve-data'), {});
  console.log(`${items} jobs sharing a ${(portrait.length / 1024 / 1024).toFixed(1)} MB portrait (+ a ${mp3.length + 128}-byte voice each), uploads only, concurrency ${concurrency}, talk serve in its own process`);

  const runOnce = async (mode: 'before' | 'after', round: number): Promise<{ wallMs: number; bytes: number; urls: number }> => {
    const label = `${mode}-${round}`;
    const env = { NEMO_CLIENT_ID: `uploads-bench-${label}` };
    const tokens = createTokenProvider({ env, configDir: path.join(root, `config-${label}`), baseUrl: serve.url, persistToken: false });
    const plain = createBackendClient({ baseUrl: serve.url, auth: tokens, env });
    const client: BackendClient =
      mode === 'before' ? plain : withUploadCache(plain, { file: path.join(root, `config-${label}`, 'uploads.json'), backendId: serve.url, account: () => uploadAccount(tokens) });
    const plan = planRun(workflow, { backend: serve.url, concurrency });
    const store = await openStateStore({ dir: path.join(root, `state-${label}`), workflowPath: file, name: plan.name, fresh: true });
    const before = await serve.stats();
    const started = performance.now();
    try {
      const outcome = await executePlan(
        { ...plan, limits: { uploads: concurrency * 2, renders: concurrency } },
        { client, store, emit: () => undefined, signal: new AbortController().signal, backendId: serve.url, limits: { concurrency, uploads: concurrency * 2, renders: concurrency }, language: 'en' },
      );
      if (outcome.status !== 'success') throw new Error(`${label}: ${outcome.status}`);
    } finally {
      await store.close();
      await plain.close();
    }
    const wallMs = performance.now() - started;
    const after = await serve.stats();
    return { wallMs, bytes: after.uploadBytes - before.uploadBytes, urls: after.urlUploads - before.urlUploads };
  };

  const results: Record<'before' | 'after', { wallMs: number; bytes: number; urls: number }[]> = { before: [], after: [] };
  for (let round = 0; round < rounds; round += 1) {
    for (const mode of round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const)) results[mode].push(await runOnce(mode, round));
  }
  await serve.close();
  for (const mode of ['before', 'after'] as const) {
    const r = results[mode];
    console.log(
      `  ${mode.padEnd(6)} uploaded ${(median(r.map((x) => x.bytes)) / 1024 / 1024).toFixed(1).padStart(6)} MB, ${String(median(r.map((x) => x.urls))).padStart(3)} by URL, wall ${(median(r.map((x) => x.wallMs)) / 1000).toFixed(2)} s (median of ${rounds}; walls ${r.map((x) => (x.wallMs / 1000).toFixed(2)).join(', ')} s)`,
    );
  }
}

// ── Part 2: preflight of a big plan ─────────────────────────────────────────────────────────
{
  const dir = path.join(root, 'big');
  await mkdir(path.join(dir, 'scripts'), { recursive: true });
  await mkdir(path.join(dir, 'voices'), { recursive: true });
  await writeFile(path.join(dir, 'portrait.jpg'), await readFile(media.portrait));
  await writeFile(path.join(dir, 'voice.mp3'), await readFile(media.voice));
  for (let i = 0; i < bigItems; i += 1) {
    const stem = `s${String(i).padStart(5, '0')}`;
    await writeFile(path.join(dir, 'scripts', `${stem}.txt`), `script ${i}\n`);
    await link(path.join(dir, 'voice.mp3'), path.join(dir, 'voices', `${stem}.mp3`));
  }
  const shared = ['name: big', 'foreach:', '  script: scripts/*.txt', 'inputs:', '  portrait: portrait.jpg', '  voice: voice.mp3', 'instructions:', '  - Make this photo talk for ${{ item.script.stem }}', 'export:', '  output: out/${{ item.script.stem }}.mp4', ''];
  await writeFile(path.join(dir, 'shared.yaml'), shared.join('\n'));
  await writeFile(path.join(dir, 'linked.yaml'), shared.join('\n').replace('voice: voice.mp3', 'voice: voices/${{ item.script.stem }}.mp3').replace('name: big', 'name: big-linked'));
  const env = { PATH: process.env['PATH'] };

  const time = async (name: string, preflight: boolean): Promise<{ ms: number; preflightMs: number; probes: number }> => {
    const probes = new Map<string, Promise<MediaInfo>>();
    let stats: PreflightStats | undefined;
    const started = performance.now();
    const { workflow, diagnostics } = await loadWorkflow(name, { env, cwd: dir, ...(preflight ? { preflight: { probes, onStats: (s) => (stats = s) } } : {}) });
    const ms = performance.now() - started;
    if (!workflow) throw new Error(diagnostics.map((d) => d.message).join('; '));
    if (workflow.jobs.length !== bigItems) throw new Error(`expected ${bigItems} jobs, got ${workflow.jobs.length}`);
    return { ms, preflightMs: stats?.ms ?? 0, probes: stats?.probes ?? 0 };
  };
  console.log(`preflight of a ${bigItems}-item plan (one output folder; cold: nothing probed before; median of ${rounds})`);
  for (const [name, what] of [
    ['shared.yaml', 'portrait and voice shared by every item (2 paths)'],
    ['linked.yaml', `voices as ${bigItems} hard links to the same bytes (${bigItems + 1} paths, 2 contents)`],
  ] as const) {
    const without: number[] = [];
    const withIt: number[] = [];
    const own: number[] = [];
    let probes = 0;
    for (let round = 0; round < rounds; round += 1) {
      without.push((await time(name, false)).ms);
      const r = await time(name, true);
      withIt.push(r.ms);
      own.push(r.preflightMs);
      probes = r.probes;
    }
    console.log(
      `  ${what}: preflight ${(median(own) / 1000).toFixed(2)} s (${own.map((m) => (m / 1000).toFixed(2)).join(', ')}), ${probes} probes; whole load ${(median(without) / 1000).toFixed(2)} s without it, ${(median(withIt) / 1000).toFixed(2)} s with it`,
    );
  }
}

await rm(root, { recursive: true, force: true });
