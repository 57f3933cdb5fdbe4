/**
 * The URLs this server hands out for its files (`cdn_url` of an upload, `outputUrl` of a
 * render), built from the contract's templates on its current address: the in-process
 * backend's port changes from run to run, so stored URLs are rewritten when they go out.
 */
import type { UploadedFile } from '../contract/bodies.js';
import type { Draft } from '../contract/draft.js';
import { fillRoute, LOCAL_ROUTES } from '../contract/routes.js';
import type { ServerContext } from './context.js';
import type { StoredRender, StoredUpload } from './store.js';

/** Where a stored upload is served. */
export function mediaUrl(ctx: ServerContext, upload: StoredUpload): string {
  return `${ctx.baseUrl()}${fillRoute(LOCAL_ROUTES.media.path, { file: upload.file })}`;
}

/** Where a finished render is served without a bearer (its `outputUrl`). */
export function outputUrl(ctx: ServerContext, render: StoredRender): string {
  return `${ctx.baseUrl()}${fillRoute(LOCAL_ROUTES.renderResult.path, { renderId: render.id })}`;
}

/** An upload as the protocol describes it (§2.5). */
export function describeUpload(ctx: ServerContext, u: StoredUpload): UploadedFile {
  const file: UploadedFile = { filename: u.originalName, file_type: u.kind, cdn_url: mediaUrl(ctx, u), hash: u.sha256, size: u.size };
  if (u.duration !== undefined) file.duration = u.duration;
  if (u.width !== undefined) file.width = u.width;
  if (u.height !== undefined) file.height = u.height;
  if (u.fps !== undefined) file.fps = u.fps;
  return file;
}

/** A `/media/…` URL this server gave out earlier, on this server's current address; other URLs as they are. */
export function currentMediaUrl(ctx: ServerContext, url: string): string {
  return url.replace(/^https?:\/\/[^/]+(?=\/media\/[^?#]+$)/, ctx.baseUrl());
}

/** A copy of a stored draft whose `/media/…` URLs name this server's current address. */
export function withCurrentUrls(ctx: ServerContext, draft: Draft): Draft {
  const copy = structuredClone(draft);
  for (const track of copy.t ?? []) {
    for (const seg of track.sg ?? []) {
      if (typeof seg.src === 'string') seg.src = currentMediaUrl(ctx, seg.src);
    }
  }
  return copy;
}
