/**
 * Connecting a command to its backend: `local` starts the local backend in-process on a free
 * loopback port, with its data (and its client id, never a token) inside the state dir, so a run killed
 * mid-render resumes against the same sessions and renders; `cloud` or a URL builds a client
 * for it. Used by `talk run`, `talk status` and `talk credits`.
 *
 * The in-process backend reads the TALK_LOCAL_* knobs (see local-knobs.ts).
 */
import path from 'node:path';
import { createBackendClient, createTokenProvider, defaultConfigDir, resolveBackendUrl, uploadAccount, withUploadCache } from '../backend/index.js';
import type { BackendClient, RequestInfo } from '../backend/types.js';
import type { FileHasher } from '../core/hash-file.js';
import { startLocalBackend, type LocalBackend } from '../local-backend/index.js';
import { localKnobsFromEnv } from './local-knobs.js';
import type { BackendChoice } from '../plan/types.js';
import { displayPath } from '../core/paths.js';
import type { CommandContext } from './context.js';

/** The upload cache, beside the client id of the account it describes. */
const UPLOAD_CACHE_FILE = 'uploads.json';

/** A connected backend. */
export interface Connection {
  client: BackendClient;
  /** Stable identity for fingerprints: `local` for the in-process backend, else the URL. */
  backendId: string;
  /** The in-process local backend, when one was started. */
  local: LocalBackend | undefined;
  /** The account the token belongs to (never the token), once a request has been made. */
  account(): string | undefined;
  close(): Promise<void>;
}

/** `--backend` wins over the workflow's `backend:`; no workflow and no flag means cloud. */
export function chooseBackend(flag: string | undefined, fromPlan: BackendChoice | undefined): BackendChoice {
  if (flag === 'local') return { kind: 'local' };
  if (flag === 'cloud') return { kind: 'cloud' };
  if (flag !== undefined) return { kind: 'url', url: flag };
  return fromPlan ?? { kind: 'cloud' };
}

/** Connect to the chosen backend; `stateDir` holds the local backend's data and client id. */
export async function connectBackend(
  choice: BackendChoice,
  stateDir: string,
  ctx: CommandContext,
  options: {
    onRequest?: ((info: RequestInfo) => void) | undefined;
    /** The command's file hasher, for the upload cache (see `sharedFileHasher`). */
    hasher?: FileHasher | undefined;
  } = {},
): Promise<Connection> {
  let local: LocalBackend | undefined;
  let baseUrl: string;
  let configDir: string | undefined;
  let persistToken = true;
  let backendId: string;
  let creditsAdvice: string | undefined;
  if (choice.kind === 'local') {
    local = await startLocalBackend({ ...localKnobsFromEnv(ctx.env), dataDir: path.join(stateDir, 'local-backend') });
    baseUrl = local.url;
    // The client id of the in-process backend lives beside its data, never in the user's home;
    // its token is not written at all (tokens never go into the state dir): the same client id
    // gets its live token back on the next run, so sessions survive.
    configDir = path.join(stateDir, 'config');
    persistToken = false;
    backendId = 'local';
    // No web app can top up a simulated account, and a registration link would name a user
    // that exists only in this folder.
    creditsAdvice = `the local backend's accounts are simulated: remove ${displayPath(local.dataDir, ctx.cwd)} to start a new one (it gets ${local.anonymousCredits} credits; TALK_LOCAL_ANONYMOUS_CREDITS sets more)`;
  } else {
    baseUrl = resolveBackendUrl(choice.kind === 'cloud' ? 'cloud' : choice.url, ctx.env);
    configDir = defaultConfigDir(ctx.env);
    backendId = baseUrl;
  }
  try {
    const auth = createTokenProvider({ env: ctx.env, configDir, baseUrl, persistToken });
    // One upload per file per account: later sessions get a file's bytes by its cached URL.
    const client = withUploadCache(createBackendClient({ baseUrl, auth, env: ctx.env, creditsAdvice, onRequest: options.onRequest }), {
      file: path.join(configDir, UPLOAD_CACHE_FILE),
      backendId,
      account: () => uploadAccount(auth),
      hasher: options.hasher,
    });
    return {
      client,
      backendId,
      local,
      account: () => uploadAccount(auth),
      async close() {
        await client.close();
        await local?.close();
      },
    };
  } catch (error) {
    await local?.close();
    throw error;
  }
}
