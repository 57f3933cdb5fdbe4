/**
 * Test rig for the backend client: a real local backend on port 0, a token provider with a
 * temp config dir (never the real home), one keep-alive Agent, and tiny media made with ffmpeg.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import { startLocalBackend, type LocalBackend, type LocalBackendOptions } from '../../../src/local-backend/index.js';
import { createBackendClient, createTokenProvider, type BackendClientExtras, type BackendTiming, type TokenProvider } from '../../../src/backend/index.js';
import type { BackendClient, CallOptions, RequestInfo } from '../../../src/backend/types.js';
import type { RenderOutput } from '../../../src/contract/bodies.js';
import type { RenderId, SessionId } from '../../../src/core/ids.js';
import type { Clock } from '../../../src/core/clock.js';

/** Fast timings so limits and recovery are exercised in milliseconds. */
export const FAST: Partial<BackendTiming> = {
  renderPollMs: 50,
  recoveryFirstMs: 50,
  recoveryNextMs: 50,
  recoveryReads: 3,
  backoffBaseMs: 10,
  backoffCapMs: 40,
  rateLimitWaitMs: 50,
};

export interface Rig {
  backend: LocalBackend;
  client: BackendClient & BackendClientExtras;
  tokens: TokenProvider;
  dir: string;
  configDir: string;
  agent: Agent;
  close(): Promise<void>;
}

export async function startRig(
  options: { local?: LocalBackendOptions; timing?: Partial<BackendTiming>; env?: Record<string, string>; maxUploadBytes?: number; onRequest?: (info: RequestInfo) => void; clock?: Clock } = {},
): Promise<Rig> {
  const dir = await mkdtemp(path.join(tmpdir(), 'talk-backend-test-'));
  const configDir = path.join(dir, 'config');
  const backend = await startLocalBackend({ heartbeatMs: 20, turnDelayMs: { generation: 60, edit: 20 }, silentEditRatio: 0, ...options.local });
  const agent = new Agent({ keepAliveTimeout: 5_000 });
  const env = options.env ?? {};
  const tokens = createTokenProvider({ env, configDir, baseUrl: backend.url, dispatcher: agent, timing: { ...FAST, ...options.timing }, clock: options.clock });
  const client = createBackendClient({
    baseUrl: backend.url,
    dispatcher: agent,
    auth: tokens,
    attribution: { version: '0.1.0-test' },
    timing: { ...FAST, ...options.timing },
    maxUploadBytes: options.maxUploadBytes,
    webUrl: 'https://web.example',
    onRequest: options.onRequest,
  });
  return {
    backend,
    client,
    tokens,
    dir,
    configDir,
    agent,
    async close() {
      await client.close();
      await agent.close();
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One render as the runner makes it: a fresh id, one submit, polled to its end (no retry). */
export async function renderOnce(
  client: BackendClient,
  input: { sessionId: SessionId; draft: unknown; output: RenderOutput },
  options: CallOptions & { onProgress?: (percent: number) => void } = {},
): Promise<{ renderId: RenderId; outputUrl: string | undefined }> {
  const renderId = client.newRenderId();
  await client.submitRender({ renderId, ...input }, options);
  const done = await client.waitForRender(renderId, options);
  return { renderId, outputUrl: done.outputUrl };
}

let shared: { portrait: string; voice: string } | undefined;

/**
 * A 270x480 portrait and a 1 s voice-over (wav: no encoder dependency), made once per test
 * file in its own temp dir (removed with the OS temp dir; the files are a few KB).
 */
export function makeMedia(_dir?: string): { portrait: string; voice: string } {
  if (shared) return shared;
  const dir = mkdtempSync(path.join(tmpdir(), 'talk-backend-media-'));
  const portrait = path.join(dir, 'portrait.jpg');
  const voice = path.join(dir, 'voice.wav');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=gray:s=270x480', '-frames:v', '1', portrait]);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=300:duration=1', '-ac', '1', '-ar', '16000', voice]);
  shared = { portrait, voice };
  return shared;
}
