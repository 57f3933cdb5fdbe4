import { describe, expect, it } from 'vitest';
import { getEventListeners, setMaxListeners } from 'node:events';
import { createRedactor, REDACTED } from '../../../src/core/redact.js';
import { abortable, formatDuration, parseDuration, sleep, withDeadline } from '../../../src/core/abort.js';
import { fileParts, isInside, sanitizeFileName } from '../../../src/core/paths.js';
import { BackendError, CreditsError, ExitCode, InterruptedError, UsageError, exitCodeFor } from '../../../src/core/errors.js';
import { TimeoutError } from '../../../src/core/errors.js';
import { formatDiagnosticLine, makeDiagnostic } from '../../../src/core/diagnostics.js';

describe('redactor', () => {
  const redact = createRedactor(['s3cr3t-token-value']);

  it('removes API tokens, literal secrets and Authorization values', () => {
    const text = 'token nmv_usr_abcDEF123 and s3cr3t-token-value; Authorization: Bearer xyz.123 {"authorization":"Bearer q"}';
    const out = redact(text);
    expect(out).not.toContain('nmv_usr_abcDEF123');
    expect(out).not.toContain('s3cr3t-token-value');
    expect(out).not.toContain('xyz.123');
    expect(out).not.toMatch(/Bearer q/);
    expect(out).toContain(REDACTED);
  });

  it('keeps claim links, which are meant to be shown', () => {
    const link = 'https://nemovideo.com/workspace/claim?ct=clm_abc123';
    expect(redact(link)).toBe(link);
  });
});

describe('durations', () => {
  it('parses the forms SPEC §2 allows', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration(12)).toBe(12_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
  });

  it('formats for people', () => {
    expect(formatDuration(450)).toBe('450 ms');
    expect(formatDuration(1500)).toBe('1.5 s');
    expect(formatDuration(90_000)).toBe('1 min 30 s');
  });
});

describe('deadlines and cancellation', () => {
  it('a deadline aborts with a TimeoutError, distinct from a cancel', async () => {
    const { signal } = withDeadline(undefined, 5, 'the test wait');
    await expect(sleep(10_000, signal)).rejects.toBeInstanceOf(TimeoutError);
  });

  it('a parent abort propagates as the parent reason', async () => {
    const parent = new AbortController();
    const { signal } = withDeadline(parent.signal, 60_000, 'never');
    const waiting = sleep(60_000, signal);
    parent.abort(new InterruptedError('stop'));
    await expect(waiting).rejects.toBeInstanceOf(InterruptedError);
  });

  it('a deadline on an aborted parent is aborted at once, with the parent reason', () => {
    const parent = new AbortController();
    parent.abort(new InterruptedError('stopped before'));
    const { signal } = withDeadline(parent.signal, 60_000, 'late');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(InterruptedError);
  });

  it('a cleared deadline leaves nothing on its parent and ignores its later abort', () => {
    const parent = new AbortController();
    // A run-wide signal carries one listener per step in flight; the runner lifts the limit on
    // its signal the same way (otherwise Node warns of a leak at the 11th).
    setMaxListeners(0, parent.signal);
    const deadlines = Array.from({ length: 100 }, () => withDeadline(parent.signal, 60_000, 'step'));
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(100);
    for (const d of deadlines) d.clear();
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
    parent.abort(new InterruptedError('stop'));
    expect(deadlines.every((d) => !d.signal.aborted)).toBe(true);
  });

  it('abortable: the promise when it settles first; the abort, at once, when it comes first — and then nothing of the promise', async () => {
    const stop = new AbortController();
    await expect(abortable(Promise.resolve(7), stop.signal)).resolves.toBe(7);
    await expect(abortable(Promise.reject(new Error('no')), stop.signal)).rejects.toThrow('no');
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);

    let fail: (error: Error) => void = () => undefined;
    const never = new Promise<number>((_resolve, reject) => (fail = reject));
    const waiting = abortable(never, stop.signal);
    stop.abort(new InterruptedError('stop'));
    await expect(waiting).rejects.toBeInstanceOf(InterruptedError);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
    // The abandoned promise failing later is no unhandled rejection (vitest would fail the run).
    fail(new Error('connection is closed'));
    await expect(abortable(new Promise(() => undefined), stop.signal)).rejects.toBeInstanceOf(InterruptedError);
  });

  it('a cleared deadline never fires (its timer is gone)', async () => {
    const deadline = withDeadline(undefined, 5, 'cleared');
    deadline.clear();
    await sleep(20);
    expect(deadline.signal.aborted).toBe(false);
  });
});

describe('diagnostics', () => {
  it('are one line each, whatever user text they quote', () => {
    const d = makeDiagnostic({ file: 'w.yaml', line: 3, col: 5 }, 'error', 'unknown key `a\r\n  b`', 'did you mean\n`c`?');
    expect(d).toEqual({ file: 'w.yaml', line: 3, col: 5, severity: 'error', message: 'unknown key `a b`', hint: 'did you mean `c`?' });
    expect(formatDiagnosticLine(d)).toBe('w.yaml:3:5 error unknown key `a b`');
    expect(makeDiagnostic({ file: 'w.yaml', line: 1, col: 1 }, 'warning', 'x')).not.toHaveProperty('hint');
  });
});

describe('paths', () => {
  it('detects escapes', () => {
    expect(isInside('/a/b', '/a/b/c.mp4')).toBe(true);
    expect(isInside('/a/b', '/a/b/../c.mp4')).toBe(false);
    expect(isInside('/a/b', '/a/bc/d')).toBe(false);
  });

  it('sanitises file names', () => {
    expect(sanitizeFileName('../../etc/passwd')).toBe('passwd');
    expect(sanitizeFileName('..')).toBe('file');
    expect(sanitizeFileName('a\u0000b?.jpg')).toBe('a_b_.jpg');
  });

  it('splits parts for expressions', () => {
    expect(fileParts('/x/anna.face.jpg')).toEqual({ path: '/x/anna.face.jpg', name: 'anna.face.jpg', stem: 'anna.face', ext: 'jpg' });
  });
});

describe('exit codes', () => {
  it('maps each error kind to SPEC §1', () => {
    expect(exitCodeFor(new UsageError('x'))).toBe(ExitCode.invalid);
    expect(exitCodeFor(new CreditsError('x'))).toBe(ExitCode.credits);
    expect(exitCodeFor(new InterruptedError())).toBe(ExitCode.interrupted);
    expect(exitCodeFor(new BackendError({ message: 'x', route: 'sse' }))).toBe(ExitCode.failed);
    expect(exitCodeFor(new Error('plain'))).toBe(ExitCode.failed);
  });
});

describe('the environment is not a bug', () => {
  it('reads disk, permission and missing-tool errors (through causes) as environment errors that say what to do', async () => {
    const { environmentErrorFrom, exitCodeFor } = await import('../../../src/core/errors.js');
    const errno = (code: string, syscall: string, path?: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: ${syscall}`), { code, syscall, ...(path === undefined ? {} : { path }) });
    const full = environmentErrorFrom(new Error('write failed', { cause: errno('ENOSPC', 'write', 'out/.a.mp4.part') }));
    expect(full).toMatchObject({ code: 'environment', reason: 'ENOSPC' });
    expect(full?.message).toMatch(/^the disk is full \(out\/\.a\.mp4\.part\)/);
    expect(full?.hint).toMatch(/free some space/);
    expect(environmentErrorFrom(errno('EEXIST', 'open', 'out/.a.mp4.1234.part'))?.hint).toMatch(/remove the leftover file/);
    expect(environmentErrorFrom(errno('EPERM', 'rename'))?.reason).toBe('EPERM');
    const missing = environmentErrorFrom(errno('ENOENT', 'spawn ffmpeg', 'ffmpeg'));
    expect(missing).toMatchObject({ reason: 'missing-tool', message: 'ffmpeg was not found on this machine' });
    expect(missing?.hint).toMatch(/install ffmpeg/);
    expect(exitCodeFor(missing)).toBe(1);
    expect(missing?.message).not.toMatch(/bug/);
    // A file that is simply not there is not the machine's fault: left to the caller.
    expect(environmentErrorFrom(errno('ENOENT', 'open', 'x.yaml'))).toBeUndefined();
    expect(environmentErrorFrom(new TypeError('x is undefined'))).toBeUndefined();
  });
});
