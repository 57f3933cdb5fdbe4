/**
 * The `/__local/*` test hooks (SPEC §5), never part of the cloud protocol: the counters, fault
 * rules added or cleared while the server runs, and the server's events as NDJSON.
 */
import type { Handlers } from '../context.js';
import { sendJson, untilClosed } from '../http.js';
import { parseFaultRule } from '../options.js';
import { readBody } from '../request-bodies.js';

/** `POST /__local/faults`: `{"rules": [...]}` adds rules, `{"clear": true}` clears them first. */
interface FaultsBody {
  clear: boolean;
  /** Undefined when absent; `invalid` when not a list of strings. */
  rules: string[] | 'invalid' | undefined;
}

function readFaultsBody(body: Record<string, unknown>): FaultsBody {
  const rules = body['rules'];
  return {
    clear: body['clear'] === true,
    rules: rules === undefined ? undefined : Array.isArray(rules) && rules.every((r) => typeof r === 'string') ? rules : 'invalid',
  };
}

export const localHandlers: Handlers<'stats' | 'events' | 'faults'> = {
  stats: async (ctx, _req, res) => {
    sendJson(res, 200, { ...ctx.stats, faultsFired: { ...ctx.faults.fired } });
  },

  faults: async (ctx, req, res) => {
    const body = await readBody(req, readFaultsBody);
    if (body.clear) ctx.faults.clear();
    if (body.rules === 'invalid') {
      sendJson(res, 400, { error: 'send {"rules":["ROUTE:FAULT[:xN|:P%]", ...]} or {"clear":true}' });
      return;
    }
    if (body.rules !== undefined) {
      try {
        ctx.faults.add(body.rules.map(parseFaultRule));
      } catch (error) {
        sendJson(res, 400, { error: error instanceof Error ? error.message : String(error) });
        return;
      }
    }
    sendJson(res, 200, { ok: true });
  },

  // NDJSON, one server event per line, until the client or the server goes away.
  events: async (ctx, _req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const unsubscribe = ctx.subscribe((event) => res.write(`${JSON.stringify(event)}\n`));
    await untilClosed(res, ctx.shutdown);
    unsubscribe();
    res.end();
  },
};
