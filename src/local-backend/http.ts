/**
 * Request reading and the contract's response shapes (CONTRACT §1.5, §5, §9 Q1): code
 * envelopes for most routes, success envelopes for the render proxy, ADK-style pre-stream
 * errors on `/run_sse`, and the error-status variants selected by `compat.errors`.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { ErrorCodes } from '../contract/codes.js';
import type { RouteName } from '../contract/routes.js';
import type { AtomicTarget } from '../core/atomic-write.js';
import type { CompatOptions } from './options.js';

/** Thrown while reading a request; carries the contract answer to send. */
export class RequestProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RequestProblem';
  }
}

/** A request header's (first) value. */
export function requestHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** JSON bodies are small (the largest is a render body with its draft). */
export const MAX_JSON_BYTES = 4 * 1024 * 1024;

/** Read a JSON body of at most `limit` bytes; malformed or oversized bodies become problems. */
export async function readJson(req: IncomingMessage, limit = MAX_JSON_BYTES): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) throw new RequestProblem(413, 413, `request body over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new RequestProblem(413, 413, `request body over ${limit} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RequestProblem(400, 400, 'the request body is not valid JSON');
  }
}

/** One file part of a multipart upload, already on disk (or skipped). */
export interface UploadedPart<T extends AtomicTarget> {
  /** The client's file name (metadata only; never used as a path). */
  name: string;
  /** Where the bytes were written, not yet committed; undefined when the part's type was refused unread. */
  target: T | undefined;
  size: number;
  sha256: string;
}

/**
 * Stream a multipart body with busboy, capped at `limit` bytes of body: a body that runs over
 * is cut off and answered with 413 + 4002 (CONTRACT §9 Q13). Parts named `files` (and the
 * alias `file`) are written as they arrive to the temp path of the target `targetFor` gives
 * their name, hashed on the way, so memory does not grow with the upload; parts it gives no
 * target (a refused type) are drained unwritten. Other fields are ignored. On failure every
 * target is aborted; on success the caller commits or discards them (see `discardParts`).
 */
export async function readMultipart<T extends AtomicTarget>(req: IncomingMessage, limit: number, targetFor: (name: string) => T | undefined): Promise<UploadedPart<T>[]> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  const tooLarge = (): RequestProblem => new RequestProblem(413, ErrorCodes.fileTooLarge, `upload over the ${Math.round(limit / 1024 / 1024)} MiB limit; compress or trim the file`);
  const unreadable = (error: unknown): RequestProblem =>
    new RequestProblem(400, 400, `the multipart body could not be read (${error instanceof Error ? error.message : String(error)}); send files in parts named "files"`);
  if (declared > limit) throw tooLarge();
  let parser: busboy.Busboy;
  try {
    // utf8: browsers and undici send non-ASCII file names as raw UTF-8 in the part header.
    parser = busboy({ headers: req.headers, defParamCharset: 'utf8' });
  } catch (error) {
    throw unreadable(error);
  }
  let size = 0;
  let overran = false;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > limit) {
        overran = true;
        callback(tooLarge());
        return;
      }
      callback(null, chunk);
    },
  });
  const parts: UploadedPart<T>[] = [];
  const writes: Promise<void>[] = [];
  parser.on('file', (field, file, info) => {
    if (field !== 'files' && field !== 'file') {
      file.resume();
      return;
    }
    const part: UploadedPart<T> = { name: info.filename ?? '', target: undefined, size: 0, sha256: '' };
    parts.push(part);
    part.target = targetFor(part.name);
    if (part.target === undefined) {
      file.resume();
      return;
    }
    const hash = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        part.size += chunk.length;
        callback(null, chunk);
      },
    });
    const written = pipeline(file, tap, createWriteStream(part.target.tempPath)).then(() => {
      part.sha256 = hash.digest('hex');
    });
    // Observed here so a failing write is never an unhandled rejection; awaited below.
    written.catch(() => undefined);
    writes.push(written);
  });
  // `pipe`, not `pipeline`, from the request: an overrun must not destroy the socket the 413
  // answer goes out on.
  const parsed = pipeline(counter, parser);
  req.on('error', (error) => counter.destroy(error));
  // A request that closes before all of it was read never ends: even one whose body had fully
  // arrived (buffered, unread) loses that buffer. It may have closed already, while the route's
  // latency was waited: no close event comes then.
  const gone = (): void => {
    if (!req.readableEnded) counter.destroy(new Error('the client closed the connection mid-upload'));
  };
  req.on('close', gone);
  if (req.destroyed) gone();
  req.pipe(counter);
  try {
    await parsed;
    await Promise.all(writes);
    return parts;
  } catch (error) {
    await Promise.allSettled(writes);
    await discardParts(parts);
    if (overran) throw tooLarge();
    throw unreadable(error);
  }
}

/** Abort the targets of `parts` (whatever of them is still a temp file: committed ones were renamed away). */
export async function discardParts(parts: readonly UploadedPart<AtomicTarget>[]): Promise<void> {
  await Promise.all(parts.flatMap((p) => (p.target === undefined ? [] : [p.target.abort()])));
}

/** Send a JSON body with a status. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** HTTP status for an envelope code in `status` mode (CONTRACT §5, invented mapping). */
export function statusForCode(code: number): number {
  switch (code) {
    case ErrorCodes.tokenInvalid:
      return 401;
    case ErrorCodes.sessionNotFound:
      return 404;
    case ErrorCodes.outOfCredits:
      return 403;
    case ErrorCodes.unsupportedType:
      return 415;
    case ErrorCodes.fileTooLarge:
      return 413;
    default:
      return code >= 400 && code < 600 ? code : 400;
  }
}

/** Success of a code-envelope route. */
export function sendOk(res: ServerResponse, data: unknown): void {
  sendJson(res, 200, { code: 0, message: 'success', data });
}

/**
 * A business error on a code-envelope route, shaped by `compat.errors`. `forceStatus` pins the
 * HTTP status where the contract fixes it (400 missing client id, 413 body overrun, 429).
 */
export function sendCodeError(
  res: ServerResponse,
  compat: CompatOptions,
  code: number,
  message: string,
  options: { forceStatus?: number; headers?: Record<string, string>; detail?: boolean } = {},
): void {
  const body: Record<string, unknown> = { code, message, data: null };
  if (compat.errors === 'legacy') body['msg'] = message;
  // ADK's own server answers pre-stream errors with `detail` (CONTRACT §9 Q7).
  if (options.detail) body['detail'] = message;
  const status = options.forceStatus ?? (compat.errors === 'status' ? statusForCode(code) : 200);
  sendJson(res, status, body, options.headers);
}

/** Success of a render-proxy route. */
export function sendSuccess(res: ServerResponse, data: unknown, status = 200): void {
  sendJson(res, status, { success: true, data });
}

/** Failure of a render-proxy route; `code` is added when an envelope code applies (1001). */
export function sendFailure(res: ServerResponse, status: number, error: string, code?: number): void {
  sendJson(res, status, code === undefined ? { success: false, error } : { success: false, error, code, message: error });
}

/** The render proxy's routes: they answer in the success envelope (§1.5 style 2). */
const RENDER_ROUTES: ReadonlySet<RouteName> = new Set<RouteName>(['render', 'render-status', 'render-cancel', 'download']);

/** Whether `route` answers in the render proxy's success envelope. */
export function isRenderRoute(route: RouteName | undefined): boolean {
  return route !== undefined && RENDER_ROUTES.has(route);
}

/** A business error in the style of the route (code envelope, render success envelope, or ADK's pre-stream error). */
export function sendRouteError(res: ServerResponse, compat: CompatOptions, route: RouteName, code: number, message: string): void {
  if (isRenderRoute(route)) {
    sendFailure(res, compat.errors === 'status' ? statusForCode(code) : 200, message, code);
  } else if (route === 'sse') {
    // Pre-stream errors on /run_sse: 1001 as 401 and 1002 as 404 like ADK, others per mode (Q7).
    const forceStatus = code === ErrorCodes.tokenInvalid ? 401 : code === ErrorCodes.sessionNotFound ? 404 : undefined;
    sendCodeError(res, compat, code, message, { detail: true, ...(forceStatus === undefined ? {} : { forceStatus }) });
  } else {
    sendCodeError(res, compat, code, message);
  }
}

/** A request that could not be read, answered with its own status in the route's envelope. */
export function sendProblem(res: ServerResponse, compat: CompatOptions, route: RouteName | undefined, problem: RequestProblem): void {
  if (isRenderRoute(route)) sendFailure(res, problem.status, problem.message, problem.code >= 1000 ? problem.code : undefined);
  else sendCodeError(res, compat, problem.code, problem.message, { forceStatus: problem.status });
}

/** Resolves once the response closes (the client went away, or it was ended) or the server shuts down. */
export function untilClosed(res: ServerResponse, shutdown: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      shutdown.removeEventListener('abort', done);
      res.off('close', done);
      resolve();
    };
    res.on('close', done);
    shutdown.addEventListener('abort', done, { once: true });
  });
}
