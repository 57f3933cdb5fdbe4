/**
 * `createBackendClient`: the `BackendClient` the runner uses, over undici, for the cloud and the
 * local backend alike (CONTRACT §2, SPEC §4). Each method is one endpoint (or one contract
 * procedure: a turn, disconnect recovery, a render with its single retry, a download with its
 * fallback); the mechanics live in the modules it composes.
 */
import { randomBytes } from 'node:crypto';
import { Agent, type Dispatcher } from 'undici';
import { abortReason, formatDuration, sleep } from '../core/abort.js';
import { BackendError, TimeoutError } from '../core/errors.js';
import { asRenderId, asSessionId, asTaskId, type RenderId, type SessionId } from '../core/ids.js';
import { APP_NAME, CLOUD_WEB_URL, ME, paths } from '../contract/routes.js';
import { MAX_UPLOAD_BYTES } from '../contract/media.js';
import type { ClaimTokenData, CreateSessionData, CreditsData, SessionStateData, UploadData } from '../contract/bodies.js';
import { resolveAttribution, type Attribution } from './attribution.js';
import type { TokenProvider } from './auth.js';
import { networkCode, networkError, outOfCreditsHint, TurnLostError } from './errors.js';
import { headerOf, Transport } from './http.js';
import { describeChange, snapshotState } from './state-diff.js';
import { ALONE, judgeRead } from './recovery.js';
import { unreachable } from '../core/unreachable.js';
import { resolveTiming, type BackendTiming } from './timing.js';
import { ByteTap, checkUploadSource, multipartUpload, writeAtomically } from './transfer.js';
import { readTurnStream, TurnWatch } from './turn.js';
import { withRetries } from './retry.js';
import { translateGuiPhrases } from './gui-phrases.js';
import type {
  BackendClient,
  CallOptions,
  DownloadResult,
  RecoveryOutcome,
  RequestInfo,
  TransferProgress,
  TurnResult,
  UploadResult,
} from './types.js';
import { isRecord } from '../core/guards.js';

/** Options of `createBackendClient`. */
export interface BackendClientOptions {
  /** `resolveBackendUrl(...)` for the cloud or a URL; the local backend's URL for `local`. */
  baseUrl: string;
  /** One keep-alive dispatcher for the whole run; when absent the client makes (and closes) its own. */
  dispatcher?: Dispatcher | undefined;
  auth: TokenProvider;
  /** Web app for claim and registration links (default `https://nemovideo.com`). */
  webUrl?: string | undefined;
  /**
   * What to tell a user who is out of credits, for a backend whose accounts the web app does
   * not manage (the local backend's are simulated); default: register or top up at `webUrl`.
   */
  creditsAdvice?: string | undefined;
  attribution?: Partial<Attribution> | undefined;
  /** Every wait; defaults depend on whether `baseUrl` is loopback (see `resolveTiming`). */
  timing?: Partial<BackendTiming> | undefined;
  /** Environment for attribution defaults (`SKILL_SOURCE`, platform detection). */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Local upload size limit (default 200 MiB, the contract's). */
  maxUploadBytes?: number | undefined;
  /** Told about every request (for `--verbose`); never sees headers, bodies or tokens. */
  onRequest?: ((info: RequestInfo) => void) | undefined;
}

/** A render reported `failed` (or `cancelled`): the export may retry once with a new id. */
export class RenderFailedError extends BackendError {
  readonly renderId: RenderId;
  constructor(renderId: RenderId, status: string, detail: string | undefined) {
    super({
      message: `render ${renderId} ${status}${detail ? `: ${detail}` : ''}`,
      route: 'render-status',
      retryable: false,
      hint: 'run again to retry the export; edits are kept',
      failure: 'render-failed',
    });
    this.name = 'RenderFailedError';
    this.renderId = renderId;
  }
}

/** Status, progress, URL and error from either render status shape (CONTRACT §2.9, Q2). */
export function readRenderStatus(data: unknown): { status: string; progress: number | undefined; outputUrl: string | undefined; error: string | undefined } {
  const top = isRecord(data) ? data : {};
  const inner = isRecord(top.data) ? top.data : top;
  const pick = (key: string): unknown => inner[key] ?? top[key];
  const output = pick('output');
  const url = pick('outputUrl') ?? (isRecord(output) ? output.url : undefined);
  const progress = pick('progress');
  const error = pick('error');
  return {
    status: (typeof pick('status') === 'string' ? (pick('status') as string) : 'unknown').toLowerCase(),
    progress: typeof progress === 'number' ? progress : undefined,
    outputUrl: typeof url === 'string' && url !== '' ? url : undefined,
    error: typeof error === 'string' ? error : undefined,
  };
}

/** Create the client. */
export function createBackendClient(options: BackendClientOptions): BackendClient & BackendClientExtras {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const ownDispatcher = options.dispatcher === undefined;
  const dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 10_000 });
  const timing = resolveTiming(baseUrl, options.timing);
  const webUrl = (options.webUrl ?? CLOUD_WEB_URL).replace(/\/+$/, '');
  const tokens = options.auth;
  const http = new Transport({
    baseUrl,
    dispatcher,
    tokens,
    attribution: resolveAttribution(options.attribution, options.env ?? {}),
    timing,
    webUrl,
    creditsAdvice: options.creditsAdvice,
    onRequest: options.onRequest,
  });
  const maxUploadBytes = options.maxUploadBytes ?? MAX_UPLOAD_BYTES;

  const getState = async (sessionId: SessionId, o: CallOptions = {}): Promise<SessionStateData> =>
    (await http.call({ route: 'state', method: 'GET', path: paths.state(sessionId), repeatable: true }, o)) as SessionStateData;

  const getCredits = async (o: CallOptions = {}): Promise<CreditsData> => {
    const data = await http.call({ route: 'credits', method: 'GET', path: paths.credits, repeatable: true }, o);
    const c = isRecord(data) ? data : {};
    const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
    const available = num(c.available);
    const frozen = num(c.frozen);
    return { available, frozen, total: typeof c.total === 'number' ? c.total : available + frozen };
  };

  const submitRender: BackendClient['submitRender'] = async (input, o = {}) => {
    await http.call(
      {
        route: 'render',
        method: 'POST',
        path: paths.renderSubmit,
        json: { id: input.renderId, sessionId: input.sessionId, draft: input.draft, output: input.output },
        // Never re-sent as-is: the runner renders again under a new id.
        repeatable: false,
      },
      o,
    );
  };

  const waitForRender: BackendClient['waitForRender'] = async (renderId, o = {}) => {
    const started = Date.now();
    for (;;) {
      const data = await http.call({ route: 'render-status', method: 'GET', path: paths.renderStatus(renderId), repeatable: true }, o);
      const s = readRenderStatus(data);
      if (s.progress !== undefined) o.onProgress?.(Math.max(0, Math.min(100, s.progress)));
      if (s.status === 'completed' || s.status === 'succeeded' || s.status === 'success') return { outputUrl: s.outputUrl };
      if (s.status === 'failed' || s.status === 'error' || s.status === 'cancelled' || s.status === 'canceled') {
        throw new RenderFailedError(renderId, s.status, s.error);
      }
      // Pending, processing, or a status nobody documented: keep polling until the cap.
      if (Date.now() - started + timing.renderPollMs > timing.renderCapMs) {
        throw new TimeoutError(`render ${renderId} did not finish within ${formatDuration(timing.renderCapMs)} (last status: ${s.status})`, {
          hint: 'run the workflow again later: talk re-attaches to this render instead of starting another',
        });
      }
      await sleep(timing.renderPollMs, o.signal);
    }
  };

  /** Errors raised while a download's body streamed: the ones worth fetching the file again for. */
  const bodyFailures = new WeakSet<BackendError>();

  /** Download `url` into `dest`; JSON answers that point elsewhere are followed once. */
  async function downloadFrom(url: string, auth: boolean, dest: string, o: CallOptions & { onProgress?: TransferProgress }, hops = 0): Promise<DownloadResult> {
    const response = await http.open({ route: 'download', method: 'GET', path: url, auth, repeatable: true }, o);
    const type = (headerOf(response.headers, 'content-type') ?? '').toLowerCase();
    if (type.includes('json')) {
      // Some gateways answer the download route with `{output: {url, size}}` (CONTRACT §8, Q15).
      let body: unknown;
      try {
        body = await response.body.json();
      } catch (error) {
        throw classifyBodyError(error, o.signal);
      }
      const s = readRenderStatus(body);
      if (!s.outputUrl || hops > 0 || !/^https?:\/\//i.test(s.outputUrl)) {
        throw new BackendError({ message: 'the download route answered with JSON that names no file', route: 'download' });
      }
      return downloadFrom(s.outputUrl, false, dest, o, hops + 1);
    }
    const length = Number(headerOf(response.headers, 'content-length'));
    try {
      return await writeAtomically(response.body, dest, Number.isFinite(length) && length > 0 ? length : undefined, o.onProgress, o.signal);
    } catch (error) {
      throw classifyBodyError(error, o.signal);
    }
  }

  /** A failure while a download's body streams in: a broken connection is transient (it is marked so the download is retried). */
  function classifyBodyError(error: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return abortReason(signal, error);
    const classified = error instanceof BackendError ? error : networkCode(error) !== undefined ? networkError(http.failure('download'), error) : error;
    if (classified instanceof BackendError && classified.retryable) bodyFailures.add(classified);
    return classified;
  }

  /**
   * A download is idempotent: one whose body broke off is fetched again from the start, with
   * the retry layer's backoff. Failures before the body (the request itself) were already
   * retried by the request layer and are not retried twice.
   */
  async function downloadWithRetries(url: string, auth: boolean, dest: string, o: CallOptions & { onProgress?: TransferProgress }): Promise<DownloadResult> {
    return withRetries(
      async () => {
        try {
          return await downloadFrom(url, auth, dest, o);
        } catch (error) {
          if (error instanceof BackendError && error.retryable && !bodyFailures.has(error)) {
            throw new BackendError({ message: error.message, route: error.route, status: error.status, envelopeCode: error.envelopeCode, retryable: false, cause: error, ...(error.hint === undefined ? {} : { hint: error.hint }), ...(error.failure === undefined ? {} : { failure: error.failure }), kind: error.code === 'credits' ? 'credits' : 'backend' });
          }
          throw error;
        }
      },
      { repeatable: true, timing, signal: o.signal, onRetry: o.onRetry },
    );
  }

  const client: BackendClient & BackendClientExtras = {
    baseUrl,
    timing,

    async createSession(input, o = {}) {
      const data = (await http.call(
        { route: 'session', method: 'POST', path: paths.createSession, json: { task_name: input.taskName, language: input.language }, repeatable: true },
        o,
      )) as Partial<CreateSessionData> | null;
      if (!data || typeof data.session_id !== 'string' || typeof data.task_id !== 'string') {
        throw new BackendError({ message: 'the backend created a session but did not say its id', route: 'session', hint: 'try again; if it persists, the backend changed its protocol' });
      }
      return { sessionId: asSessionId(String(data.session_id)), taskId: asTaskId(String(data.task_id)), userId: data.user_id };
    },

    async uploadFile(sessionId, filePath, o = {}) {
      const source = await checkUploadSource(filePath, http.failure('upload'), maxUploadBytes);
      let tap = new ByteTap(source.size, o.onProgress);
      const data = (await http.call(
        {
          route: 'upload',
          method: 'POST',
          path: paths.upload(sessionId),
          // A retry after a reset sends the file again from the start, with a fresh tap.
          stream: () => {
            tap = new ByteTap(source.size, o.onProgress);
            return multipartUpload(filePath, source, tap);
          },
          repeatable: true,
        },
        o,
      )) as Partial<UploadData> | null;
      const file = data?.files?.[0];
      if (!file) throw new BackendError({ message: `the backend accepted ${source.name} but listed no file`, route: 'upload' });
      return { file, bytes: tap.bytes, sha256: tap.digest() } satisfies UploadResult;
    },

    async uploadUrl(sessionId, url, o = {}) {
      if (!/^https?:\/\//i.test(url)) {
        throw new BackendError({ message: `only http(s) URLs can be uploaded (got ${url.slice(0, 40)})`, route: 'upload', hint: 'use an https:// link or a local file' });
      }
      const data = (await http.call(
        { route: 'upload', method: 'POST', path: paths.upload(sessionId), json: { urls: [url], source_type: 'url' }, repeatable: true },
        o,
      )) as Partial<UploadData> | null;
      return data?.files ?? [];
    },

    getState,
    getCredits,

    async captureBaseline(sessionId, o = {}) {
      const at = Date.now();
      const [state, credits] = await Promise.all([getState(sessionId, o), getCredits(o)]);
      return { snapshot: snapshotState(state), credits, at };
    },

    async sendInstruction(sessionId, text, o = {}) {
      const before = o.baseline?.snapshot ?? snapshotState(await getState(sessionId, o));
      const onActivity = o.onActivity;
      const watch = new TurnWatch(
        { hardLimitMs: timing.sseHardLimitMs, heartbeatOnlyMs: timing.sseHeartbeatOnlyMs, stillWorkingMs: timing.stillWorkingMs },
        onActivity,
        o.signal,
      );
      let reading;
      try {
        const response = await http.open(
          {
            route: 'sse',
            method: 'POST',
            path: paths.runSse,
            json: { app_name: APP_NAME, user_id: ME, session_id: sessionId, new_message: { parts: [{ text }] } },
            headers: { accept: 'text/event-stream' },
            // Never re-sent (it charges credits); only a 1001 renewal or a 429 — both refused
            // before the turn starts — lead to a second request.
            repeatable: false,
            untimed: true,
            expect: 'text/event-stream',
          },
          { signal: watch.signal, onRetry: o.onRetry },
        );
        reading = await readTurnStream(response.body, watch, onActivity);
      } catch (error) {
        if (watch.signal.aborted) throw abortReason(watch.signal, error);
        // The request may have reached the agent before the connection broke: only a refused
        // connection proves it did not.
        if (error instanceof BackendError && error.status === undefined && !(error instanceof TurnLostError) && networkCode(error.cause) !== 'ECONNREFUSED') {
          throw new TurnLostError('dropped', `the connection to the agent broke before its answer began (${networkCode(error.cause) ?? 'network error'})`, error);
        }
        throw error;
      } finally {
        watch.stop();
      }

      if (reading.streamError !== undefined) {
        throw new BackendError({
          message: http.redact(`the agent's run failed: ${reading.streamError}`),
          route: 'sse',
          hint: 'talk did not send the instruction again; check `talk status`, then run again to retry it',
        });
      }
      if (reading.texts.length === 0 && !reading.question && reading.modelError !== undefined) {
        throw new BackendError({ message: http.redact(`the agent's model failed: ${reading.modelError}`), route: 'sse', hint: 'run again to retry the instruction' });
      }
      if (reading.events === 0 || (reading.openTools > 0 && reading.texts.length === 0 && !reading.question)) {
        throw new TurnLostError('dropped', 'the stream ended before the agent finished its turn');
      }
      const reply = translateGuiPhrases(reading.texts.join('\n\n'));
      const result: TurnResult = { text: reply, tools: reading.tools, silent: reply === '' && !reading.question };
      if (reading.question) result.question = reading.question;
      if (result.silent) {
        // About a third of edits end with tool events only: confirm by reading state (§3.8).
        result.change = describeChange(before, snapshotState(await getState(sessionId, { signal: o.signal, onRetry: o.onRetry })));
      }
      return result;
    },

    async recoverTurn(sessionId, baseline, o = {}): Promise<RecoveryOutcome> {
      const started = Date.now();
      let unchanged = 0;
      let unexplained = 0;
      let wait = timing.recoveryFirstMs;
      for (;;) {
        await sleep(wait, o.signal);
        wait = timing.recoveryNextMs;
        const [state, credits] = await Promise.all([getState(sessionId, o), getCredits(o)]);
        // Read after the requests: a turn that concluded meanwhile is counted with its charge.
        const verdict = judgeRead(baseline, { snapshot: snapshotState(state), credits }, o.activity?.() ?? ALONE);
        const windowLeft = Date.now() - started + wait <= timing.recoveryMaxMs;
        switch (verdict.kind) {
          case 'applied':
            return { outcome: 'applied', credits: verdict.credits };
          case 'running':
            if (!windowLeft) return { outcome: 'running' };
            break;
          case 'busy':
            if (!windowLeft) return { outcome: 'unknown', why: verdict.why };
            break;
          case 'unexplained':
            unexplained += 1;
            if (unexplained >= timing.recoveryReads) return { outcome: 'unknown', why: verdict.why };
            break;
          case 'unchanged':
            unchanged += 1;
            if (unchanged >= timing.recoveryReads) return { outcome: 'not-applied' };
            break;
          default:
            unreachable(verdict);
        }
      }
    },

    newRenderId() {
      return asRenderId(`render_${Date.now()}_${randomBytes(4).toString('hex')}`);
    },

    submitRender,
    waitForRender,

    async downloadRender(renderId, outputUrl, dest, o = {}) {
      if (outputUrl !== undefined && /^https?:\/\//i.test(outputUrl)) {
        try {
          // The output URL is a CDN link: fetched without the token (CONTRACT §4 step 4).
          return await downloadWithRetries(outputUrl, false, dest, o);
        } catch (error) {
          if (o.signal?.aborted || !(error instanceof BackendError)) throw error;
          o.onRetry?.({ attempt: 1, reason: `output URL failed (${error.message}); using the download route`, delayMs: 0 });
        }
      }
      return downloadWithRetries(paths.renderDownload(renderId), true, dest, o);
    },

    async claimLink(taskId, sessionId, o = {}) {
      const data = (await http.call(
        { route: 'claim', method: 'POST', path: paths.claimToken, json: { task_id: taskId, session_id: sessionId }, repeatable: true },
        o,
      )) as Partial<ClaimTokenData> | null;
      if (!data || typeof data.claim_token !== 'string') {
        throw new BackendError({ message: 'the backend gave no claim token for this project', route: 'claim' });
      }
      return `${webUrl}/workspace/claim?ct=${encodeURIComponent(data.claim_token)}`;
    },

    outOfCreditsHint: () => outOfCreditsHint(http.failure('credits')),

    async close() {
      if (ownDispatcher) await dispatcher.close();
    },
  };
  return client;
}

/** Methods beyond the `BackendClient` interface. */
export interface BackendClientExtras {
  /** The timings in effect (after defaults). */
  readonly timing: BackendTiming;
}
