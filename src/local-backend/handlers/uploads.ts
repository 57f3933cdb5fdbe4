/**
 * Uploads (§2.5): multipart files streamed to disk and stored all-or-nothing, or the URL form
 * (media this server already serves is taken from its store, any other URL stood in for by a
 * placeholder); and serving stored media at their `cdn_url`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { UploadData } from '../../contract/bodies.js';
import { ErrorCodes } from '../../contract/codes.js';
import { ACCEPTED_EXTENSIONS, isAcceptedExtension, MIME_TYPES, type AcceptedExtension } from '../../contract/media.js';
import type { Handlers, ServerContext } from '../context.js';
import { guard } from '../guard.js';
import { discardParts, readMultipart, requestHeader, RequestProblem, sendCodeError, sendOk, sendRouteError, type UploadedPart } from '../http.js';
import type { IncomingUpload } from '../media-store.js';
import { readBody, readUploadUrlBody } from '../request-bodies.js';
import { matchPath } from '../router.js';
import { sendFile } from '../send-file.js';
import type { StoredUpload } from '../store.js';
import { describeUpload } from '../urls.js';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
/** Most URLs one URL-form upload may name. */
const MAX_URLS = 20;
const ACCEPTED = `accepted types: ${ACCEPTED_EXTENSIONS.join(', ')}`;

function extOf(name: string): string {
  return path.extname(name).slice(1).toLowerCase();
}

/** The stored upload `/media/<file>` names, when this server serves it. */
function storedMedia(ctx: ServerContext, file: string): StoredUpload | undefined {
  // Stored names are `<upload id>.<ext>` (posters `<id>-poster.jpg` are not served), so the
  // record is found by key, not by a scan of every upload.
  const byId = ctx.store.data.uploads[file.replace(/\.[^.]+$/, '')];
  return byId?.file === file ? byId : undefined;
}

/**
 * For a URL upload: the stored media a `/media/<file>` URL names (the `cdn_url` this server gave
 * out, on any loopback port, since the in-process backend's port changes from run to run);
 * `unknown` for a media URL of this server that names nothing stored (a stale link: the client
 * falls back to sending the bytes); undefined for any other URL.
 */
function servedMedia(ctx: ServerContext, url: URL): StoredUpload | 'unknown' | undefined {
  const file = matchPath('media', url.pathname)?.file;
  if (file === undefined) return undefined;
  const record = storedMedia(ctx, file);
  if (record) return record;
  const ours = LOOPBACK_HOSTS.has(url.hostname) || url.host === new URL(ctx.baseUrl()).host;
  return ours ? 'unknown' : undefined;
}

/**
 * Multipart: every part streamed to its own target in the media store as it arrives (refused
 * types are not written), then all validated before any is stored (CONTRACT §9 Q12).
 * Undefined once a refusal was answered.
 */
async function storeParts(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, sessionId: string): Promise<StoredUpload[] | undefined> {
  const parts = await readMultipart(req, ctx.maxUploadBytes, (name) => (isAcceptedExtension(extOf(name)) ? ctx.media.incoming(extOf(name)) : undefined));
  for (const part of parts) ctx.stats.uploadBytes += part.size;
  const stored: StoredUpload[] = [];
  const adopted = new Set<UploadedPart<IncomingUpload>>();
  try {
    if (parts.length === 0) throw new RequestProblem(400, 400, 'no file in the upload; send files in multipart parts named "files"');
    for (const part of parts) {
      if (part.target === undefined) {
        sendRouteError(res, ctx.compat, 'upload', ErrorCodes.unsupportedType, `unsupported file type "${extOf(part.name) || part.name}"; ${ACCEPTED}`);
        return undefined;
      }
      if (part.size > ctx.maxUploadBytes) {
        sendRouteError(res, ctx.compat, 'upload', ErrorCodes.fileTooLarge, 'file too large; compress or trim it');
        return undefined;
      }
    }
    for (const part of parts) {
      if (part.target === undefined) continue;
      stored.push(await ctx.media.addFile(sessionId, part.name, part.target, part.size, part.sha256, ctx.shutdown));
      adopted.add(part);
    }
    return stored;
  } finally {
    // Stored parts were committed into the media store: only the others are left to remove.
    await discardParts(parts.filter((p) => !adopted.has(p)));
  }
}

/** The URL form: every URL checked before any is stored. Undefined once a refusal was answered. */
async function storeUrls(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, sessionId: string): Promise<StoredUpload[] | undefined> {
  const { urls } = await readBody(req, readUploadUrlBody);
  if (urls === undefined || urls.length === 0 || urls.length > MAX_URLS) {
    throw new RequestProblem(400, 400, 'send multipart parts named "files", or JSON {"urls":[...],"source_type":"url"}');
  }
  const checked: { url: string; ext: AcceptedExtension; own: StoredUpload | undefined }[] = [];
  for (const u of urls) {
    let ext = '';
    let url: URL;
    try {
      url = new URL(u);
      ext = extOf(url.pathname);
    } catch {
      throw new RequestProblem(400, 400, `"${u}" is not a URL`);
    }
    if (!isAcceptedExtension(ext)) {
      sendRouteError(res, ctx.compat, 'upload', ErrorCodes.unsupportedType, `unsupported file type "${ext || u}"; ${ACCEPTED}`);
      return undefined;
    }
    const own = servedMedia(ctx, url);
    if (own === 'unknown') throw new RequestProblem(404, 404, `no media file at ${url.pathname} on this server; upload the file itself`);
    checked.push({ url: u, ext, own });
  }
  const stored: StoredUpload[] = [];
  for (const { url, ext, own } of checked) {
    // Media this server serves is taken from its store (same bytes, same probe); any other
    // URL gets a placeholder of its kind, since the local backend never fetches the network.
    stored.push(own ? await ctx.media.addFromStored(sessionId, own, ctx.shutdown) : await ctx.media.addFromUrl(sessionId, url, ext, ctx.shutdown));
  }
  ctx.stats.urlUploads += urls.length;
  return stored;
}

export const uploadHandlers: Handlers<'upload' | 'media'> = {
  upload: async (ctx, req, res, params) => {
    const caller = guard(ctx, req, res, 'upload', { userSlot: params.user, sessionId: params.sessionId, missing: 'session not found; create a new session' });
    if (!caller) return;
    const { session } = caller;
    const multipart = (requestHeader(req, 'content-type') ?? '').startsWith('multipart/form-data');
    const stored = multipart ? await storeParts(ctx, req, res, session.id) : await storeUrls(ctx, req, res, session.id);
    if (!stored) return;
    for (const u of stored) {
      ctx.store.data.uploads[u.id] = u;
      session.uploads.push(u.id);
      ctx.emit({ type: 'upload:received', sessionId: session.id, file: u.originalName, kind: u.kind, size: u.size });
    }
    ctx.stats.uploads += stored.length;
    await ctx.store.save({ uploads: stored.map((u) => u.id), sessions: session.id });
    sendOk(res, { files: stored.map((u) => describeUpload(ctx, u)), session_state_applied: true } satisfies UploadData);
  },

  media: async (ctx, req, res, params) => {
    const record = storedMedia(ctx, params.file);
    if (!record) {
      sendCodeError(res, ctx.compat, 404, 'no such media file', { forceStatus: 404 });
      return;
    }
    await sendFile(req, res, ctx.media.pathOf(record.file), MIME_TYPES[record.ext as AcceptedExtension] ?? 'application/octet-stream');
  },
};
