/**
 * A `talk serve` of the built CLI for end-to-end tests: one local backend that several CLI
 * processes (shards, workers) share over loopback, with its `/__local/stats` counters, and a
 * batch workspace whose items are real (tiny) media.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnCli, type CliProcess } from './cli.js';
import { makeTestMedia } from './media.js';
import { batchForm } from '../integration/runner/rig.js';

/** A running `talk serve`. */
export interface Served {
  url: string;
  process: CliProcess;
  /** The server's `/__local/stats` counters. */
  stats(): Promise<LocalStats>;
  stop(): Promise<void>;
}

/** The counters the tests read (SPEC §5). */
export interface LocalStats {
  messages: number;
  rendersStarted: number;
  rendersCompleted: number;
  creditsSpent: number;
  sessionsCreated: number;
  uploads: number;
}

/** Start `talk serve --port 0` in a temp dir; `env` carries TALK_LOCAL_* knobs. */
export async function startServe(options: { args?: string[]; env?: Record<string, string> } = {}): Promise<Served> {
  const dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-serve-'));
  const child = spawnCli(['serve', '--port', '0', '--data-dir', path.join(dir, 'data'), ...(options.args ?? [])], { cwd: dir, env: options.env ?? {}, timeoutMs: 600_000 });
  const match = await child.waitForOutput(/listening on (http:\/\/\S+)/);
  const url = match[1]!;
  return {
    url,
    process: child,
    async stats() {
      const response = await fetch(`${url}/__local/stats`);
      return (await response.json()) as LocalStats;
    },
    async stop() {
      child.child.kill('SIGTERM');
      await child.done;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A temp dir with `faces/pNN.jpg` + `voices/pNN.mp3` for `items` items and `batch.yaml` over them. */
export async function batchWorkspace(items: number, options: { name?: string; concurrency?: number; top?: string[] } = {}): Promise<string> {
  const media = await makeTestMedia(path.join(tmpdir(), 'talk-test-media-e2e'));
  const dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-batch-'));
  await mkdir(path.join(dir, 'faces'));
  await mkdir(path.join(dir, 'voices'));
  for (let i = 0; i < items; i += 1) {
    const stem = `p${String(i).padStart(2, '0')}`;
    await copyFile(media.portrait, path.join(dir, 'faces', `${stem}.jpg`));
    await copyFile(media.voice, path.join(dir, 'voices', `${stem}.mp3`));
  }
  const yaml = batchForm(options.name ?? 'batch', options.concurrency ?? 4, options.top ?? []);
  await writeFile(path.join(dir, 'batch.yaml'), yaml);
  return dir;
}
