/**
 * Rig for runner integration tests: a real local backend on a loopback port (in this process,
 * so its counters survive a runner being killed), a workflow written into a temp dir with tiny
 * media, and `run()` that loads, plans and executes it exactly as `talk run` does, collecting
 * the events.
 */
import { mkdtemp, rm, writeFile, mkdir, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalBackend, type LocalBackend, type LocalBackendOptions } from '../../../src/local-backend/index.js';
import { loadWorkflow } from '../../../src/workflow/index.js';
import { planRun, type Plan } from '../../../src/plan/index.js';
import { openStateStore, runDirFor, stateDirFor } from '../../../src/state/index.js';
import { executePlan, type RunOutcome } from '../../../src/runner/index.js';
import type { Clock } from '../../../src/core/clock.js';
import type { TalkEvent } from '../../../src/core/events.js';
import { Agent } from 'undici';
import { createBackendClient, createTokenProvider } from '../../../src/backend/index.js';
import type { BackendClient } from '../../../src/backend/types.js';
import { makeTestMedia } from '../../helpers/media.js';

const mediaDir = path.join(os.tmpdir(), 'talk-test-media-runner');

/** A temp folder with `portrait.jpg` and `voice.mp3` (plus `faces/` and `voices/` when asked). */
export async function makeWorkspace(items = 0): Promise<string> {
  const media = await makeTestMedia(mediaDir);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'talk-run-'));
  await copyFile(media.portrait, path.join(dir, 'portrait.jpg'));
  await copyFile(media.voice, path.join(dir, 'voice.mp3'));
  if (items > 0) {
    await mkdir(path.join(dir, 'faces'));
    await mkdir(path.join(dir, 'voices'));
    for (let i = 0; i < items; i += 1) {
      const stem = `p${String(i).padStart(2, '0')}`;
      await copyFile(media.portrait, path.join(dir, 'faces', `${stem}.jpg`));
      await copyFile(media.voice, path.join(dir, 'voices', `${stem}.mp3`));
    }
  }
  return dir;
}

export interface Rig {
  dir: string;
  backend: LocalBackend;
  workflow: string;
  writeWorkflow(yaml: string): Promise<void>;
  run(options?: { signal?: AbortSignal; fresh?: boolean; concurrency?: number; failFast?: boolean; projectLinks?: boolean; onEvent?: (e: TalkEvent) => void; clock?: Clock; wrapClient?: (client: BackendClient) => BackendClient }): Promise<{ outcome: RunOutcome; events: TalkEvent[]; plan: Plan }>;
  close(): Promise<void>;
}

/** Start a backend and a workspace. `backendOptions` are the local backend's knobs. */
export async function createRig(yaml: string, backendOptions: LocalBackendOptions = {}, items = 0): Promise<Rig> {
  const dir = await makeWorkspace(items);
  // One account for the whole rig, as one `talk run` has; by default it holds two generations
  // per job (a test that restarts a job in a new session pays twice).
  const backend = await startLocalBackend({ dataDir: path.join(dir, 'backend-data'), silentEditRatio: 0, anonymousCredits: 200 * Math.max(1, items), ...backendOptions });
  const workflow = path.join(dir, 'workflow.yaml');
  await writeFile(workflow, yaml);
  const rig: Rig = {
    dir,
    backend,
    workflow,
    async writeWorkflow(text) {
      await writeFile(workflow, text);
    },
    async run(options = {}) {
      const signal = options.signal ?? new AbortController().signal;
      const { workflow: wf, diagnostics } = await loadWorkflow(workflow, { env: {}, cwd: dir });
      if (!wf) throw new Error(`invalid workflow: ${diagnostics.map((d) => d.message).join('; ')}`);
      const plan = planRun(wf, { backend: backend.url, concurrency: options.concurrency });
      const stateDir = stateDirFor(workflow, undefined, dir);
      const store = await openStateStore({ dir: runDirFor(stateDir, workflow, backend.url), workflowPath: workflow, name: plan.name, fresh: options.fresh });
      // A new client per run, as a resumed run is a new process; the client id (and so the
      // account) is kept in the rig's config dir.
      const dispatcher = new Agent({ keepAliveTimeout: 10_000 });
      const env = { NEMO_CLIENT_ID: 'rig-client' };
      const client = createBackendClient({ baseUrl: backend.url, dispatcher, auth: createTokenProvider({ env, configDir: path.join(dir, 'config'), baseUrl: backend.url, dispatcher }), env: {} });
      const events: TalkEvent[] = [];
      try {
        const outcome = await executePlan(plan, {
          client: options.wrapClient ? options.wrapClient(client) : client,
          store,
          emit: (e) => {
            events.push(e);
            options.onEvent?.(e);
          },
          signal,
          backendId: backend.url,
          limits: { concurrency: plan.concurrency, uploads: plan.limits.uploads, renders: plan.limits.renders },
          budget: plan.budget,
          failFast: options.failFast,
          language: plan.language,
          retryBaseMs: 20,
          projectLinks: options.projectLinks,
          clock: options.clock,
        });
        return { outcome, events, plan };
      } finally {
        await store.close();
        await client.close();
        await dispatcher.close();
      }
    },
    async close() {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return rig;
}

/** The short-form workflow most tests use. */
export function shortForm(extra: { instructions?: string[]; exportLines?: string; name?: string; top?: string } = {}): string {
  const instructions = extra.instructions ?? ['Make this photo talk using my voiceover'];
  return [
    'version: 1',
    `name: ${extra.name ?? 'rig'}`,
    extra.top ?? '',
    'inputs:',
    '  portrait: portrait.jpg',
    '  voice: voice.mp3',
    'instructions:',
    ...instructions.map((i) => `  - ${JSON.stringify(i)}`),
    'export:',
    extra.exportLines ?? '  resolution: 720p\n  quality: low\n  output: out/${{ workflow.name }}.mp4',
    '',
  ].join('\n');
}

/**
 * A `foreach` batch over `faces/*.jpg` with voices paired by stem (the layout `makeWorkspace`
 * makes), one generation per item, outputs `out/<stem>.mp4`. `top` adds top-level lines.
 */
export function batchForm(name: string, concurrency: number, top: string[] = []): string {
  return [
    'version: 1',
    `name: ${name}`,
    `concurrency: ${concurrency}`,
    ...top,
    'foreach:',
    '  portrait: faces/*.jpg',
    '  voice: voices/${{ item.portrait.stem }}.mp3',
    'instructions:',
    '  - Make this photo talk using my voiceover',
    'export:',
    '  resolution: 720p',
    '  quality: low',
    '  output: out/${{ item.portrait.stem }}.mp4',
    '',
  ].join('\n');
}

