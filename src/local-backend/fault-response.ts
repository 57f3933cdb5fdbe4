/**
 * What an injected terminal fault (SPEC §5) does to a request: an error status or envelope
 * code in the route's own shape, a connection reset mid-body, or no answer at all. The rules
 * that decide which fault fires are `faults.ts`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteName } from '../contract/routes.js';
import { unreachable } from '../core/unreachable.js';
import type { ServerContext } from './context.js';
import { isRenderRoute, sendJson, sendRouteError, untilClosed } from './http.js';
import type { FaultKind } from './options.js';

/** Answer (or refuse to answer) a request on `route` as `fault` says. Resolves when that is settled. */
export async function applyFault(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, route: RouteName, fault: FaultKind): Promise<void> {
  switch (fault.kind) {
    case 'status': {
      // Injected 429s ask for a 1 s wait so client retry tests stay fast; real quota 429s say 30.
      const headers: Record<string, string> = fault.status === 429 ? { 'retry-after': '1' } : {};
      if (isRenderRoute(route)) sendJson(res, fault.status, { success: false, error: `injected fault: HTTP ${fault.status}` }, headers);
      else sendJson(res, fault.status, { code: fault.status, message: `injected fault: HTTP ${fault.status}`, data: null }, headers);
      return;
    }
    case 'code':
      sendRouteError(res, ctx.compat, route, fault.code, `injected fault: code ${fault.code}`);
      return;
    case 'reset':
      // Start a real response, then destroy the socket mid-body.
      if (route === 'sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"type":"heartbeat"}\n\n');
      } else if (route === 'download') {
        // As a dropped download looks: part of the file, then nothing.
        res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': '65536' });
        res.write(Buffer.alloc(4096));
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '64' });
        res.write('{"code":0,"data":{');
      }
      await new Promise((resolve) => setImmediate(resolve));
      req.socket.destroy();
      return;
    case 'stall':
      // Accept and never answer; ends when the client gives up or the server closes.
      await untilClosed(res, ctx.shutdown);
      req.socket.destroy();
      return;
    case 'drop':
    case 'notext':
    case 'fail':
      return;
    default:
      return unreachable(fault, 'fault');
  }
}
