/**
 * Test and benchmark helper: a `BackendClient` whose sessions each belong to their own
 * anonymous identity on the local backend (see below).
 */
import path from 'node:path';
import { Agent } from 'undici';
import { createBackendClient, createTokenProvider } from '../../src/backend/index.js';
import type { BackendClient } from '../../src/backend/types.js';
import type { RenderId, SessionId } from '../../src/core/ids.js';

/**
 * Every anonymous user of the local backend holds 100 credits (the contract's grant), so a
 * batch of generations needs one user per session. This is a real composition of real clients,
 * not a stand-in: each session is created by its own anonymous identity (its own client id),
 * and every later call about that session (or its renders) goes through the same identity.
 * The mapping outlives one run, so a resumed run finds its sessions' owners.
 */
export function sessionIdentities(baseUrl: string, configDir: string): { client(): BackendClient; close(): Promise<void> } {
  const owner = new Map<string, number>();
  const clients = new Map<number, BackendClient>();
  // One connection pool for every identity, as one process of talk would have; made again
  // after `close()`, since a rig runs several times (a resumed run is a new process).
  let dispatcher: Agent | undefined;
  let next = 0;
  const clientFor = (i: number): BackendClient => {
    let c = clients.get(i);
    if (!c) {
      dispatcher ??= new Agent({ keepAliveTimeout: 10_000 });
      const env = { NEMO_CLIENT_ID: `rig-client-${i}` };
      c = createBackendClient({ baseUrl, dispatcher, auth: createTokenProvider({ env, configDir: path.join(configDir, String(i)), baseUrl, dispatcher }), env: {} });
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
    cancelRender: (r: RenderId, o) => of(r).cancelRender(r, o),
    downloadRender: (r: RenderId, u, d, o) => of(r).downloadRender(r, u, d, o),
    claimLink: (t, s: SessionId, o) => of(s).claimLink(t, s, o),
    anonymousUserId: () => clientFor(0).anonymousUserId(),
    outOfCreditsHint: () => clientFor(0).outOfCreditsHint(),
    close: async () => undefined,
  };
  return {
    client: () => client,
    async close() {
      await Promise.all([...clients.values()].map((c) => c.close()));
      clients.clear();
      await dispatcher?.close();
      dispatcher = undefined;
    },
  };
}
