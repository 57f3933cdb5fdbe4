/**
 * Serving a stored file (media, finished renders) with a single byte range, so downloads can
 * resume where they broke off.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { requestHeader } from './http.js';

/** Serve `file` as `type`, honouring a single `Range: bytes=a-b` (206, or 416 when unsatisfiable). */
export async function sendFile(req: IncomingMessage, res: ServerResponse, file: string, type: string): Promise<void> {
  const info = await stat(file);
  const range = /^bytes=(\d*)-(\d*)$/.exec(requestHeader(req, 'range') ?? '');
  let start = 0;
  let end = info.size - 1;
  let status = 200;
  if (range && (range[1] !== '' || range[2] !== '')) {
    if (range[1] === '') start = Math.max(0, info.size - Number(range[2]));
    else {
      start = Number(range[1]);
      if (range[2] !== '') end = Math.min(end, Number(range[2]));
    }
    if (start > end || start >= info.size) {
      res.writeHead(416, { 'content-range': `bytes */${info.size}` });
      res.end();
      return;
    }
    status = 206;
  }
  const headers: Record<string, string | number> = { 'content-type': type, 'content-length': end - start + 1, 'accept-ranges': 'bytes' };
  if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${info.size}`;
  res.writeHead(status, headers);
  try {
    // Also when the client went away before this began (no close event would come then).
    await pipeline(createReadStream(file, { start, end }), res);
  } catch {
    res.destroy();
  }
}
