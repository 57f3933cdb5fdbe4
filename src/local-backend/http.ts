/**
 * Request reading and the contract's response shapes (CONTRACT §1.5, §5, §9 Q1): code
 * envelopes for most routes, success envelopes for the render proxy, and the error-status
 * variants selected by `compat.errors`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { Request } from 'undici';
import { ErrorCodes } from '../contract/codes.js';
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

/** One file part of a multipart upload. */
export interface UploadedPart {
  name: string;
  data: Buffer;
}

/**
 * Parse a multipart body with undici's form-data parser, capped at `limit` bytes of body: a
 * body that runs over is cut off and answered with 413 + 4002 (CONTRACT §9 Q13). Parts named
 * `files` (and the alias `file`) are returned; other fields are ignored.
 */
export async function readMultipart(req: IncomingMessage, limit: number): Promise<UploadedPart[]> {
  const contentType = req.headers['content-type'] ?? '';
  const declared = Number(req.headers['content-length'] ?? NaN);
  const tooLarge = (): RequestProblem => new RequestProblem(413, ErrorCodes.fileTooLarge, `upload over the ${Math.round(limit / 1024 / 1024)} MiB limit; compress or trim the file`);
  if (declared > limit) throw tooLarge();
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
  req.pipe(counter);
  req.on('error', (error) => counter.destroy(error));
  const request = new Request('http://local.invalid/', {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: Readable.toWeb(counter) as ReadableStream<Uint8Array>,
    duplex: 'half',
  });
  let form: Awaited<ReturnType<Request['formData']>>;
  try {
    form = await request.formData();
  } catch (error) {
    if (overran) throw tooLarge();
    throw new RequestProblem(400, 400, `the multipart body could not be read (${(error as Error).message}); send files in parts named "files"`);
  }
  const parts: UploadedPart[] = [];
  for (const field of ['files', 'file']) {
    for (const value of form.getAll(field)) {
      if (typeof value === 'string') continue;
      parts.push({ name: value.name, data: Buffer.from(await value.arrayBuffer()) });
    }
  }
  return parts;
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
