/**
 * The HTTP side of the local backend: every request enters here, finds its route from the
 * contract's templates (`router.ts`), is counted, delayed and perhaps faulted as its protocol
 * route says (SPEC §5), and is answered by its handler (`handlers/`). A malformed request never
 * crashes it: every failure is answered in the contract's error shape.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sleep } from '../core/abort.js';
import type { Handler, Handlers, ServerContext } from './context.js';
import { applyFault } from './fault-response.js';
import { authHandlers } from './handlers/auth.js';
import { localHandlers } from './handlers/local.js';
import { renderHandlers } from './handlers/renders.js';
import { sessionHandlers } from './handlers/sessions.js';
import { uploadHandlers } from './handlers/uploads.js';
import { RequestProblem, sendCodeError, sendJson, sendProblem } from './http.js';
import { matchRoute, type ParamsOf, type RouteId, type RouteMatch } from './router.js';

export type { LocalStats, ServerContext } from './context.js';

/** One handler per route; the compiler checks that none is missing. */
const HANDLERS: Handlers<RouteId> = { ...authHandlers, ...sessionHandlers, ...uploadHandlers, ...renderHandlers, ...localHandlers };

/** What a request's log line calls its route: the protocol name, or `media` / `local`. */
function logName(matched: RouteMatch): string {
  if (matched.counted !== undefined) return matched.counted;
  return matched.id === 'media' ? 'media' : 'local';
}

/** Entry point for every request. */
export async function handleRequest(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = ctx.clock.now();
  let pathname = '/';
  try {
    pathname = new URL(req.url ?? '/', 'http://local.invalid').pathname;
  } catch {
    // keep '/': answered as not found below
  }
  const method = req.method ?? 'GET';
  const matched = matchRoute(method, pathname);
  let routeName: string = 'unknown';
  res.on('finish', () => ctx.logger?.(`${method} ${pathname} ${res.statusCode} ${ctx.clock.now() - started}ms [${routeName}]`));
  if (matched === undefined) {
    sendCodeError(res, ctx.compat, 404, `no route ${method} ${pathname}`, { forceStatus: 404 });
    return;
  }
  if (matched === 'method') {
    sendCodeError(res, ctx.compat, 405, `method ${method} not allowed on ${pathname}`, { forceStatus: 405 });
    return;
  }
  routeName = logName(matched);
  // The match carries its route's id and that route's parameters together, and the table is
  // keyed by the same id; the compiler cannot follow the pairing through a union, so say it once.
  const handler = HANDLERS[matched.id] as Handler<RouteId>;
  const params = matched.params as ParamsOf<RouteId>;
  try {
    const route = matched.counted;
    if (route === undefined) {
      // Media and the test hooks are outside stats, latency and faults.
      await handler(ctx, req, res, params, { drop: false, notext: false, fail: false });
      return;
    }
    const { stats } = ctx;
    stats.requests[route] = (stats.requests[route] ?? 0) + 1;
    stats.inFlight[route] = (stats.inFlight[route] ?? 0) + 1;
    stats.maxInFlight[route] = Math.max(stats.maxInFlight[route] ?? 0, stats.inFlight[route] ?? 0);
    res.on('close', () => {
      stats.inFlight[route] = (stats.inFlight[route] ?? 1) - 1;
    });
    // `render=MS` is the least time a render takes (SPEC §5), not a delay of the submit route.
    const delay = route === 'render' ? 0 : (ctx.latency[route] ?? 0);
    if (delay > 0) await sleep(delay, ctx.shutdown);
    const decision = ctx.faults.decide(route);
    if (decision.terminal) {
      await applyFault(ctx, req, res, route, decision.terminal);
      return;
    }
    await handler(ctx, req, res, params, decision);
  } catch (error) {
    if (error instanceof RequestProblem) {
      sendProblem(res, ctx.compat, matched.counted, error);
      return;
    }
    if (ctx.shutdown.aborted) {
      res.destroy();
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    // A client that goes away mid-request (an SSE reader that disconnects, a cancelled
    // upload) is normal traffic, not a fault of the server.
    if (req.destroyed || res.destroyed || (error as NodeJS.ErrnoException).code === 'ECONNRESET' || /^aborted$/.test(message)) {
      ctx.logger?.(`info: client disconnected from ${method} ${pathname} (${message})`);
      res.destroy();
      return;
    }
    ctx.logger?.(`internal error on ${method} ${pathname}: ${message}`);
    if (!res.headersSent) sendJson(res, 500, { code: 500, message: `the local backend failed: ${message}`, data: null, success: false, error: message });
    else res.destroy();
  }
}
