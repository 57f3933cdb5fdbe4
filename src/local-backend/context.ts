/**
 * What every handler of the local backend shares: the server's state, options and hooks
 * (`ServerContext`), the `/__local/stats` counters, and the shape of a route handler.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteName } from '../contract/routes.js';
import type { Clock } from '../core/clock.js';
import type { FaultDecision, FaultEngine } from './faults.js';
import type { MediaStore } from './media-store.js';
import type { CompatOptions, LatencyMap, LocalEvent, LocalLogger } from './options.js';
import type { Random } from './random.js';
import type { RenderManager } from './renders.js';
import type { ParamsOf, RouteId } from './router.js';
import type { Store } from './store.js';

/** Counters of `GET /__local/stats` (SPEC §5), plus in-flight gauges and cache hits. */
export interface LocalStats {
  requests: Partial<Record<RouteName, number>>;
  tokensIssued: number;
  sessionsCreated: number;
  /** Files stored by uploads, of either form. */
  uploads: number;
  /** Bytes received in file parts of multipart uploads (what the client sent, not what a URL named). */
  uploadBytes: number;
  /** Files uploaded in the URL form (one per URL). */
  urlUploads: number;
  messages: number;
  rendersStarted: number;
  rendersCompleted: number;
  rendersFailed: number;
  renderCacheHits: number;
  creditsSpent: number;
  faultsFired: Record<string, number>;
  inFlight: Partial<Record<RouteName, number>>;
  maxInFlight: Partial<Record<RouteName, number>>;
}

/** Every counter at zero. */
export function emptyStats(): LocalStats {
  return {
    requests: {},
    tokensIssued: 0,
    sessionsCreated: 0,
    uploads: 0,
    uploadBytes: 0,
    urlUploads: 0,
    messages: 0,
    rendersStarted: 0,
    rendersCompleted: 0,
    rendersFailed: 0,
    renderCacheHits: 0,
    creditsSpent: 0,
    faultsFired: {},
    inFlight: {},
    maxInFlight: {},
  };
}

/** Everything the handlers share. */
export interface ServerContext {
  store: Store;
  media: MediaStore;
  renders: RenderManager;
  faults: FaultEngine;
  compat: CompatOptions;
  latency: LatencyMap;
  random: Random;
  heartbeatMs: number;
  tokenTtlMs: number;
  /** Every time the server reads: token lifetimes, stamps, log durations. */
  clock: Clock;
  /** Credits of a new anonymous account. */
  anonymousCredits: number;
  /** New anonymous tokens per IP per 7 days, when the quota is on. */
  ipQuota: number | undefined;
  /** When each new anonymous token was issued, per remote address (in memory, like a rate limiter). */
  tokensByIp: Map<string, number[]>;
  silentEditRatio: number;
  noiseRatio: number;
  turnDelays: { generation: number; edit: number };
  maxUploadBytes: number;
  stats: LocalStats;
  baseUrl: () => string;
  emit: (event: Omit<LocalEvent, 'at'>) => void;
  subscribe: (listener: (event: LocalEvent) => void) => () => void;
  logger: LocalLogger | undefined;
  /** Aborts on close: ends stalls, event streams, turns and renders. */
  shutdown: AbortSignal;
  /** Running turns, awaited on close. */
  turns: Set<Promise<void>>;
  /** Sessions with a turn running (for `concurrentTurn=409`). */
  busySessions: Map<string, number>;
}

/** The shaping faults that reach a handler (terminal faults were answered before it). */
export type ShapingFaults = Pick<FaultDecision, 'drop' | 'notext' | 'fail'>;

/** Answers one route; `params` are the route's, by name. */
export type Handler<Id extends RouteId> = (ctx: ServerContext, req: IncomingMessage, res: ServerResponse, params: ParamsOf<Id>, faults: ShapingFaults) => Promise<void>;

/** Handlers for some routes (a handler file's share of the table). */
export type Handlers<Ids extends RouteId> = { [Id in Ids]: Handler<Id> };
