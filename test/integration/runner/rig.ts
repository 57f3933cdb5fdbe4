/**
 * Rig for runner integration tests: a real local backend on a loopback port (in this process,
 * so its counters survive a runner being killed), a workflow written into a temp dir with tiny
 * media, and `run()` that loads, plans and executes it exactly as `talk run` does, collecting
 * the events.
 */
import { mkdtemp, rm, writeFile, mkdir, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createBackendClient, createTokenProvider } from '../../../src/backend/index.js';
import { startLocalBackend, type LocalBackend, type LocalBackendOptions } from '../../../src/local-backend/index.js';
import { loadWorkflow } from '../../../src/workflow/index.js';
import { planRun, type Plan } from '../../../src/plan/index.js';
import { openStateStore, runDirFor, stateDirFor } from '../../../src/state/index.js';
import { executePlan, type RunOutcome } from '../../../src/runner/index.js';
import type { TalkEvent } from '../../../src/core/events.js';
import type { BackendClient } from '../../../src/backend/types.js';
import type { RenderId, SessionId } from '../../../src/core/ids.js';
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
  run(options?: { signal?: AbortSignal; fresh?: boolean; concurrency?: number; failFast?: boolean; onEvent?: (e: TalkEvent) => void }): Promise<{ outcome: RunOutcome; events: TalkEvent[]; plan: Plan }>;
  close(): Promise<void>;
}

/** Start a backend and a workspace. `backendOptions` are the local backend's knobs. */
export async function createRig(yaml: string, backendOptions: LocalBackendOptions = {}, items = 0): Promise<Rig> {
  const dir = await makeWorkspace(items);
  const backend = await startLocalBackend({ dataDir: path.join(dir, 'backend-data'), silentEditRatio: 0, ...backendOptions });
  const workflow = path.join(dir, 'workflow.yaml');
  await writeFile(workflow, yaml);
  const identities = sessionIdentities(backend.url, path.join(dir, 'config'));
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
      const store = await openStateStore({ dir: runDirFor(stateDir, workflow), workflowPath: workflow, name: plan.name, fresh: options.fresh });
      const client = identities.client();
      const events: TalkEvent[] = [];
      try {
        const outcome = await executePlan(plan, {
          client,
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
        });
        return { outcome, events, plan };
      } finally {
        await store.close();
        await identities.close();
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
 * Every anonymous user of the local backend holds 100 credits (the contract's grant), so a
 * batch of generations needs one user per session. This is a real composition of real clients,
 * not a stand-in: each session is created by its own anonymous identity (its own client id),
 * and every later call about that session (or its renders) goes through the same identity.
 * The mapping outlives one run, so a resumed run finds its sessions' owners.
 */
function sessionIdentities(baseUrl: string, configDir: string): { client(): BackendClient; close(): Promise<void> } {
  const owner = new Map<string, number>();
  const clients = new Map<number, BackendClient>();
  let next = 0;
  const clientFor = (i: number): BackendClient => {
    let c = clients.get(i);
    if (!c) {
      const env = { NEMO_CLIENT_ID: `rig-client-${i}` };
      c = createBackendClient({ baseUrl, auth: createTokenProvider({ env, configDir: path.join(configDir, String(i)), baseUrl }), env: {} });
      clients.set(i, c);
    }
    return c;
  };
  const of = (key: string): BackendClient => clientFor(owner.get(key) ?? 0);
  const client: BackendClient = {
    baseUrl,
    async createSession(input, o) {
      const i = next++;
      const created = await clientFor(i).createSession(input, o);
      owner.set(created.sessionId, i);
      return created;
    },
    uploadFile: (s, f, o) => of(s).uploadFile(s, f, o),
    uploadUrl: (s, u, o) => of(s).uploadUrl(s, u, o),
    getState: (s, o) => of(s).getState(s, o),
    // The balance the runner checks before a paid step: that of the newest identity.
    getCredits: (o) => clientFor(Math.max(0, next - 1)).getCredits(o),
    captureBaseline: (s, o) => of(s).captureBaseline(s, o),
    sendInstruction: (s, t, o) => of(s).sendInstruction(s, t, o),
    recoverTurn: (s, b, o) => of(s).recoverTurn(s, b, o),
    newRenderId: () => clientFor(0).newRenderId(),
    async submitRender(input, o) {
      owner.set(input.renderId, owner.get(input.sessionId) ?? 0);
      return of(input.sessionId).submitRender(input, o);
    },
    waitForRender: (r: RenderId, o) => of(r).waitForRender(r, o),
    downloadRender: (r: RenderId, u, d, o) => of(r).downloadRender(r, u, d, o),
    claimLink: (t, s: SessionId, o) => of(s).claimLink(t, s, o),
    anonymousUserId: () => clientFor(0).anonymousUserId(),
    close: async () => undefined,
  };
  return {
    client: () => client,
    async close() {
      await Promise.all([...clients.values()].map((c) => c.close()));
      clients.clear();
    },
  };
}
