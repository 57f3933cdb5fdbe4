/**
 * The render proxy (§2.8–§2.11): submitting an export, its status in either shape, cancelling
 * it, and the finished file, both at its `outputUrl` (no bearer, like a CDN) and at the
 * fallback download route (bearer required). Every answer is in the success envelope.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RenderStatusData, RenderStatusTopLevel } from '../../contract/bodies.js';
import { isExportReady } from '../../contract/draft.js';
import { ATTRIBUTION_HEADERS } from '../../contract/routes.js';
import type { Handlers, ServerContext } from '../context.js';
import { authenticate, ownSession } from '../guard.js';
import { requestHeader, sendFailure, sendJson, sendSuccess } from '../http.js';
import { OUTPUT_OPTIONS, readBody, readRenderSubmitBody } from '../request-bodies.js';
import { sendFile } from '../send-file.js';
import type { StoredRender, UserRecord } from '../store.js';
import { outputUrl } from '../urls.js';

const RENDER_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const SUPPORTED_OUTPUT = Object.entries(OUTPUT_OPTIONS)
  .map(([key, values]) => `${key} ${values.join('|')}`)
  .join('; ');

/** The caller's render named in the path, or undefined after answering 404. */
function ownRender(ctx: ServerContext, res: ServerResponse, user: UserRecord, renderId: string): StoredRender | undefined {
  const record = ctx.store.data.renders[renderId];
  if (record && record.userId === user.id) return record;
  sendFailure(res, 404, 'render not found');
  return undefined;
}

/** Send a finished render's file; `viaOutputUrl` is the unauthenticated `outputUrl`, else the fallback route. */
async function sendRender(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, renderId: string, viaOutputUrl: boolean): Promise<void> {
  if (!viaOutputUrl && !authenticate(ctx, req, res, 'download')) return;
  const record = ctx.store.data.renders[renderId];
  const file = record ? ctx.renders.fileOf(record) : undefined;
  if (!record || record.status !== 'completed' || !file) {
    sendFailure(res, 404, record ? `render is ${record.status}, not completed` : 'render not found');
    return;
  }
  if (!viaOutputUrl && ctx.compat.download === 'json') {
    sendJson(res, 200, { output: { url: outputUrl(ctx, record), size: record.size } });
    return;
  }
  ctx.emit({ type: 'download:started', renderId: record.id, sessionId: record.sessionId });
  await sendFile(req, res, file, 'video/mp4');
  ctx.emit({ type: 'download:finished', renderId: record.id, sessionId: record.sessionId });
}

export const renderHandlers: Handlers<'render' | 'render-status' | 'render-cancel' | 'download' | 'renderResult'> = {
  render: async (ctx, req, res, _params, faults) => {
    const user = authenticate(ctx, req, res, 'render');
    if (!user) return;
    const missing = ATTRIBUTION_HEADERS.filter((h) => !requestHeader(req, h));
    if (missing.length > 0) {
      // Anonymous tokens may export only from an attributed skill (CONTRACT §5, Q9).
      sendFailure(res, 402, `export is blocked for the free plan without attribution (missing ${missing.join(', ')}); register to unlock export`);
      return;
    }
    const body = await readBody(req, readRenderSubmitBody);
    const { id, draft, output } = body;
    if (id === undefined || !RENDER_ID.test(id)) {
      sendFailure(res, 400, 'render id must be a string of 1-128 letters, digits, "_", "-", "." or ":" (e.g. render_<ms>)');
      return;
    }
    const session = ownSession(ctx, res, 'render', user, { sessionId: body.sessionId, missing: 'session not found; create a new session' });
    if (!session) return;
    if (!isExportReady(draft)) {
      sendFailure(res, 400, 'the draft has no tracks with segments; generate a video before exporting');
      return;
    }
    if (!output) {
      sendFailure(res, 400, `unsupported output options: ${SUPPORTED_OUTPUT}`);
      return;
    }
    if (ctx.store.data.renders[id]) {
      sendFailure(res, 409, 'duplicate render id; choose a new id');
      return;
    }
    const record: StoredRender = { id, userId: user.id, sessionId: session.id, draft, output, status: 'pending', progress: 5, createdAt: ctx.clock.now(), ...(faults.fail ? { injectedFailure: 'render worker lost (injected fault)' } : {}) };
    ctx.store.data.renders[id] = record;
    ctx.stats.rendersStarted += 1;
    ctx.emit({ type: 'render:submitted', renderId: id, sessionId: session.id });
    // The job starts while its record is written (a cached render is done in milliseconds);
    // the answer still waits until the record is on disk.
    // The answer is the render as accepted: the job may move it on while the record is written.
    const accepted = { id, status: 'pending', progress: record.progress };
    ctx.renders.start(record);
    await ctx.store.save({ renders: id });
    sendSuccess(res, accepted);
  },

  'render-status': async (ctx, req, res, params) => {
    const user = authenticate(ctx, req, res, 'render-status');
    const record = user && ownRender(ctx, res, user, params.renderId);
    if (!record) return;
    const url = record.status === 'completed' ? outputUrl(ctx, record) : undefined;
    if (ctx.compat.renderStatus === 'top-level') {
      const body: RenderStatusTopLevel = { taskId: record.id, id: record.id, status: record.status, progress: record.progress };
      if (url) body.output = { url, duration: record.duration, size: record.size };
      if (record.error) body.error = record.error;
      sendJson(res, 200, body);
      return;
    }
    const data: RenderStatusData & { notes?: string[] } = { id: record.id, status: record.status, progress: record.progress, createdAt: record.createdAt };
    if (url) data.outputUrl = url;
    if (record.completedAt !== undefined) data.completedAt = record.completedAt;
    if (record.error) data.error = record.error;
    if (record.notes) data.notes = record.notes;
    sendSuccess(res, data);
  },

  'render-cancel': async (ctx, req, res, params) => {
    const user = authenticate(ctx, req, res, 'render-cancel');
    const record = user && ownRender(ctx, res, user, params.renderId);
    if (!record) return;
    if (!ctx.renders.cancel(record)) {
      sendFailure(res, 409, `render already ${record.status}; nothing to cancel`);
      return;
    }
    sendSuccess(res, { id: record.id, status: record.status });
  },

  download: (ctx, req, res, params) => sendRender(ctx, req, res, params.renderId, false),
  renderResult: (ctx, req, res, params) => sendRender(ctx, req, res, params.renderId, true),
};
