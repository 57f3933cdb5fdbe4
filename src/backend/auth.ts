/**
 * Where the bearer token comes from (CONTRACT §2.1, SPEC §4): `NEMO_TOKEN` when set, otherwise
 * a free anonymous token for a stable client id. The client id lives in the user's config dir
 * (`NEMO_CLIENT_ID` overrides); the anonymous token is cached there with its expiry, keyed by
 * base URL so the local backend's tokens never mix with the cloud's. Both files are mode 0600.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { getGlobalDispatcher, request, type Dispatcher } from 'undici';
import { abortReason } from '../core/abort.js';
import { BackendError } from '../core/errors.js';
import { createRedactor } from '../core/redact.js';
import { paths } from '../contract/routes.js';
import type { AnonymousTokenData } from '../contract/bodies.js';
import { attributionHeaders, resolveAttribution, type Attribution } from './attribution.js';
import { decodeAnswer } from './envelope.js';
import { networkError, type FailureContext } from './errors.js';
import { withRetries } from './retry.js';
import { resolveTiming, type BackendTiming } from './timing.js';
import type { CallOptions } from './types.js';
import { writeFileAtomic } from '../core/atomic-write.js';
import { systemClock, type Clock } from '../core/clock.js';

/**
 * The token source the client asks before every request. One provider serves every job of a
 * run: concurrent callers share one anonymous-token request.
 */
export interface TokenProvider {
  /** True when the token is the user's own (`NEMO_TOKEN`): it is never renewed. */
  readonly userSupplied: boolean;
  /** The token to send now; fetches an anonymous one when none is cached or it expired. */
  token(options?: CallOptions): Promise<string>;
  /**
   * After a 1001: drop `rejected` and get a new anonymous token with the same client id.
   * Resolves false when renewal is impossible (a user-supplied token).
   */
  renew(rejected: string | undefined, options?: CallOptions): Promise<boolean>;
  /** The anonymous user id (`anon_…`), when known. */
  anonymousUserId(): string | undefined;
  /** Every token value seen, for redaction. */
  secrets(): string[];
}

/** Options of `createTokenProvider`. */
export interface TokenProviderOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** Where `client_id` and the token cache live (default `$XDG_CONFIG_HOME/nemovideo` or `~/.config/nemovideo`). */
  configDir?: string | undefined;
  baseUrl: string;
  /**
   * Keep the anonymous token in `<configDir>/tokens.json` (default true). Off for the in-process
   * local backend, whose config dir sits inside the run's state dir where tokens never go: the
   * same client id gets its live token back from the backend instead.
   */
  persistToken?: boolean | undefined;
  dispatcher?: Dispatcher | undefined;
  attribution?: Partial<Attribution> | undefined;
  timing?: Partial<BackendTiming> | undefined;
  /** What "now" is when a token's age is judged (default: the system clock). */
  clock?: Clock | undefined;
}

/** One cached anonymous token. */
interface CachedToken {
  clientId: string;
  token: string;
  userId: string | undefined;
  issuedAt: number;
  expiresAt: number;
}

interface TokenCacheFile {
  version: 1;
  /** Keyed by base URL. */
  tokens: Record<string, CachedToken>;
}

const SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000;
const CACHE_FILE = 'tokens.json';
const CLIENT_ID_FILE = 'client_id';

/** The default config folder: `$XDG_CONFIG_HOME/nemovideo`, else `~/.config/nemovideo`. */
export function defaultConfigDir(env: Readonly<Record<string, string | undefined>>): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(env.HOME ?? homedir(), '.config');
  return path.join(base, 'nemovideo');
}

/** Write a file atomically with mode 0600 (temp beside it, then rename). */
async function writePrivate(file: string, text: string): Promise<void> {
  await writeFileAtomic(file, text, { mode: 0o600, durable: false });
}

/**
 * The client id: `NEMO_CLIENT_ID`, else the one stored in `<configDir>/client_id`, else a new
 * UUID written there (mode 0600). Reused forever: the backend ties the anonymous account to it.
 */
export async function resolveClientId(env: Readonly<Record<string, string | undefined>>, configDir: string): Promise<string> {
  const fromEnv = env.NEMO_CLIENT_ID?.trim();
  if (fromEnv) return fromEnv;
  const file = path.join(configDir, CLIENT_ID_FILE);
  try {
    const stored = (await readFile(file, 'utf8')).trim();
    if (stored.length > 0 && stored.length <= 64) return stored;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const id = randomUUID();
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  try {
    // `wx`: when two runs start at once, the first writer wins and the other reads its id.
    await writeFile(file, `${id}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(file, 0o600);
    return id;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return (await readFile(file, 'utf8')).trim();
  }
}

/** A fixed token: `NEMO_TOKEN`. */
function userTokenProvider(token: string): TokenProvider {
  return {
    userSupplied: true,
    token: async () => token,
    renew: async () => false,
    anonymousUserId: () => undefined,
    secrets: () => [token],
  };
}

/** Build the token provider for a base URL. */
export function createTokenProvider(options: TokenProviderOptions): TokenProvider {
  const userToken = options.env.NEMO_TOKEN?.trim();
  if (userToken) return userTokenProvider(userToken);

  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const configDir = options.configDir ?? defaultConfigDir(options.env);
  const cacheFile = path.join(configDir, CACHE_FILE);
  const persistToken = options.persistToken ?? true;
  const timing = resolveTiming(baseUrl, options.timing);
  const attribution = resolveAttribution(options.attribution, options.env);
  // Without an injected dispatcher, use undici's default one (never replace it: no setGlobalDispatcher).
  const dispatcher = options.dispatcher ?? getGlobalDispatcher();
  const seen = new Set<string>();
  let current: CachedToken | undefined;
  let loaded = false;
  let inflight: Promise<CachedToken> | undefined;
  const clock = options.clock ?? systemClock;

  const redact = (text: string): string => createRedactor([...seen])(text);
  const failure: FailureContext = { route: 'auth', baseUrl, redact, userSuppliedToken: false };

  const isFresh = (t: CachedToken, now = clock.now()): boolean => {
    // Renew a little before expiry so a token does not lapse mid-request; the margin is a tenth
    // of the token's life (at most a minute), so short test lifetimes still get used.
    const margin = Math.min(60_000, (t.expiresAt - t.issuedAt) / 10);
    return t.expiresAt - margin > now;
  };

  async function readCache(): Promise<TokenCacheFile> {
    if (!persistToken) return { version: 1, tokens: {} };
    try {
      const parsed = JSON.parse(await readFile(cacheFile, 'utf8')) as Partial<TokenCacheFile>;
      if (parsed.version === 1 && typeof parsed.tokens === 'object' && parsed.tokens !== null) return parsed as TokenCacheFile;
    } catch {
      // Missing or unreadable cache: start empty; it is only a cache.
    }
    return { version: 1, tokens: {} };
  }

  async function store(entry: CachedToken | undefined): Promise<void> {
    if (!persistToken) return;
    const cache = await readCache();
    if (entry) cache.tokens[baseUrl] = entry;
    else delete cache.tokens[baseUrl];
    await writePrivate(cacheFile, `${JSON.stringify(cache, null, 2)}\n`);
  }

  async function fetchToken(clientId: string, callOptions: CallOptions): Promise<CachedToken> {
    const data = await withRetries(
      async () => {
        let response: Dispatcher.ResponseData;
        let text: string;
        try {
          response = await request(`${baseUrl}${paths.anonymousToken}`, {
            method: 'POST',
            headers: { ...attributionHeaders(attribution), 'x-client-id': clientId },
            dispatcher,
            signal: callOptions.signal,
            headersTimeout: timing.requestTimeoutMs,
            bodyTimeout: timing.requestTimeoutMs,
          });
          text = await response.body.text();
        } catch (error) {
          if (callOptions.signal?.aborted) throw abortReason(callOptions.signal, error);
          throw networkError(failure, error);
        }
        const decoded = decodeAnswer(failure, {
          status: response.statusCode,
          contentType: String(response.headers['content-type'] ?? ''),
          text,
          retryAfter: typeof response.headers['retry-after'] === 'string' ? response.headers['retry-after'] : undefined,
        });
        if (!decoded.ok) throw decoded.error;
        return decoded.data as Partial<AnonymousTokenData> | null;
      },
      { repeatable: true, timing, signal: callOptions.signal, onRetry: callOptions.onRetry },
    );
    if (!data || typeof data.token !== 'string' || data.token === '') {
      throw new BackendError({ message: 'the backend answered the anonymous-token request without a token', route: 'auth', hint: 'try again later, or set NEMO_TOKEN' });
    }
    seen.add(data.token);
    const issuedAt = clock.now();
    const parsedExpiry = typeof data.expires_at === 'string' ? Date.parse(data.expires_at) : Number.NaN;
    return {
      clientId,
      token: data.token,
      userId: typeof data.user_id === 'string' ? data.user_id : undefined,
      issuedAt,
      expiresAt: Number.isNaN(parsedExpiry) ? issuedAt + SEVEN_DAYS_MS : parsedExpiry,
    };
  }

  async function obtain(callOptions: CallOptions, drop: string | undefined): Promise<CachedToken> {
    const clientId = await resolveClientId(options.env, configDir);
    if (!loaded) {
      loaded = true;
      const cached = (await readCache()).tokens[baseUrl];
      if (cached && cached.clientId === clientId && typeof cached.token === 'string') {
        seen.add(cached.token);
        current = cached;
      }
    }
    if (current && current.clientId === clientId && current.token !== drop && isFresh(current)) return current;
    const fresh = await fetchToken(clientId, callOptions);
    current = fresh;
    await store(fresh);
    return fresh;
  }

  /** One anonymous-token request at a time; callers that arrive meanwhile share its answer. */
  function shared(callOptions: CallOptions, drop: string | undefined): Promise<CachedToken> {
    if (!inflight) {
      inflight = obtain(callOptions, drop).finally(() => {
        inflight = undefined;
      });
    }
    return inflight;
  }

  return {
    userSupplied: false,
    async token(callOptions = {}) {
      if (current && isFresh(current)) return current.token;
      return (await shared(callOptions, undefined)).token;
    },
    async renew(rejected, callOptions = {}) {
      // Another request may already have renewed it while this one was in flight.
      if (current && current.token !== rejected && isFresh(current)) return true;
      await shared(callOptions, rejected ?? current?.token);
      return true;
    },
    anonymousUserId: () => current?.userId,
    secrets: () => [...seen],
  };
}
