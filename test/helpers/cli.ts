/**
 * End-to-end rig: spawns the built CLI (`node bin/talk.js …`) in a folder with a scrubbed
 * environment, and gives back exit code, stdout, stderr (ANSI stripped) and the NDJSON events.
 *
 * - `runCli(args, { cwd, env, input?, timeoutMs? })` → `{ code, signal, stdout, stderr, rawStdout, rawStderr, events }`
 * - `spawnCli(args, options)` → a running `CliProcess` (the child, live output, `waitForEvent`,
 *   `done`) for kill tests that pick their moment from the events, never from sleeps.
 * - `runCliInTerminal(args, options)` runs it under a pseudo-terminal (util-linux `script`), so
 *   `--reporter auto` picks the tty renderer exactly as on a user's terminal.
 *
 * The environment starts empty: only PATH, a HOME and XDG config dir inside `cwd` (so tokens
 * and client ids never touch the real home), TZ=UTC, a UTF-8 locale, and what `env` adds.
 * `GITHUB_ACTIONS`, `NEMO_TOKEN`, `CI`, … of the machine running the tests never leak in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import type { TalkEvent } from '../../src/core/events.js';

/** The repository root (where bin/ and dist/ are). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The launcher the rig runs. */
export const TALK_BIN = join(REPO_ROOT, 'bin', 'talk.js');
const BUNDLE = join(REPO_ROOT, 'dist', 'talk.js');

/** Options of a CLI run. */
export interface CliOptions {
  /** Working directory of the child (usually a fresh temp dir). */
  cwd: string;
  /** Extra environment on top of the scrubbed base; `undefined` values remove a key. */
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin, which is then closed. */
  input?: string;
  /** Kill (SIGKILL) the child after this long; the result then has `timedOut: true`. Default 60 s. */
  timeoutMs?: number;
}

/** Outcome of a finished CLI run. */
export interface CliResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout with ANSI sequences removed and `\r\n` folded to `\n`. */
  stdout: string;
  stderr: string;
  rawStdout: string;
  rawStderr: string;
  /** Every stdout line that is a JSON object, parsed (the `--reporter json` events). */
  events: TalkEvent[];
  timedOut: boolean;
}

/** Removes ANSI escapes (colours, cursor moves) and carriage returns. */
export function stripAnsi(text: string): string {
  return stripVTControlCharacters(text).replace(/\r\n?/g, '\n');
}

/**
 * Parses NDJSON: each line starting with `{` must be one JSON object. Other lines are left
 * out, so the same parser works on mixed output (they cannot occur in `--reporter json`).
 */
export function parseEvents(stdout: string): TalkEvent[] {
  const events: TalkEvent[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      events.push(JSON.parse(line) as TalkEvent);
    } catch (error) {
      throw new Error(`stdout line is not one JSON object: ${line}`, { cause: error });
    }
  }
  return events;
}

/** The scrubbed environment the CLI sees. */
export function scrubbedEnv(cwd: string, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const base: Record<string, string | undefined> = {
    PATH: process.env['PATH'],
    HOME: join(cwd, '.home'),
    XDG_CONFIG_HOME: join(cwd, '.home', '.config'),
    TZ: 'UTC',
    LANG: 'C.UTF-8',
    // Hints spell commands as `talk …` (how the user types it is detected; see invocation.test.ts).
    TALK_PROGRAM: 'talk',
    ...extra,
  };
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) if (value !== undefined) env[key] = value;
  return env;
}

function assertBuilt(): void {
  if (!existsSync(BUNDLE)) throw new Error('dist/talk.js is missing: run `npm run build` before the e2e tests (npm test does it).');
}

/** A CLI process that is still running. */
export interface CliProcess {
  child: ChildProcess;
  /** Output so far (ANSI stripped). */
  stdout(): string;
  stderr(): string;
  /** Events parsed from stdout so far. */
  events(): TalkEvent[];
  /** Resolves with the first event (already seen or future) that matches; rejects if the process ends first. */
  waitForEvent(predicate: (event: TalkEvent) => boolean): Promise<TalkEvent>;
  /** Resolves with the first match of `pattern` in stdout (ANSI stripped), e.g. `talk serve`'s `listening on …`. */
  waitForOutput(pattern: RegExp): Promise<RegExpMatchArray>;
  /** Resolves once the child has exited and its output is complete. */
  done: Promise<CliResult>;
}

/** Starts `node bin/talk.js <args>`; see `CliProcess`. */
export function spawnCli(args: readonly string[], options: CliOptions): CliProcess {
  assertBuilt();
  return watchChild(spawn(process.execPath, [TALK_BIN, ...args], { cwd: options.cwd, env: scrubbedEnv(options.cwd, options.env), stdio: 'pipe' }), options);
}

function watchChild(child: ChildProcess, options: CliOptions, stdin: 'close' | 'keep' = 'close'): CliProcess {
  let rawStdout = '';
  let rawStderr = '';
  let timedOut = false;
  const waiters: { predicate: (e: TalkEvent) => boolean; resolve: (e: TalkEvent) => void; reject: (e: Error) => void }[] = [];
  const outputWaiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void }[] = [];
  const checkOutput = (): void => {
    const text = stripAnsi(rawStdout);
    for (const waiter of [...outputWaiters]) {
      const match = text.match(waiter.pattern);
      if (match === null) continue;
      outputWaiters.splice(outputWaiters.indexOf(waiter), 1);
      waiter.resolve(match);
    }
  };
  let seen = 0;
  let parsed: TalkEvent[] = [];

  const checkWaiters = (): void => {
    // Only complete lines are parsed, so a half-written event is never seen.
    const complete = rawStdout.slice(0, rawStdout.lastIndexOf('\n') + 1);
    if (complete.length === seen) return;
    seen = complete.length;
    parsed = parseEvents(stripAnsi(complete));
    for (const waiter of [...waiters]) {
      const match = parsed.find(waiter.predicate);
      if (match === undefined) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(match);
    }
  };

  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    rawStdout += chunk;
    checkWaiters();
    checkOutput();
  });
  child.stderr?.on('data', (chunk: string) => {
    rawStderr += chunk;
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  else if (stdin === 'close') child.stdin?.end();

  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 60_000);

  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      checkWaiters();
      for (const waiter of outputWaiters.splice(0)) {
        waiter.reject(new Error(`talk exited (code ${String(code)}) before printing ${String(waiter.pattern)}.\nstderr:\n${stripAnsi(rawStderr)}`));
      }
      for (const waiter of waiters.splice(0)) {
        waiter.reject(new Error(`talk exited (code ${String(code)}, signal ${String(signal)}) before the awaited event.\nstderr:\n${stripAnsi(rawStderr)}`));
      }
      const stdout = stripAnsi(rawStdout);
      resolve({ code, signal, stdout, stderr: stripAnsi(rawStderr), rawStdout, rawStderr, events: parseEvents(stdout), timedOut });
    });
  });

  return {
    child,
    stdout: () => stripAnsi(rawStdout),
    stderr: () => stripAnsi(rawStderr),
    events: () => parseEvents(stripAnsi(rawStdout.slice(0, rawStdout.lastIndexOf('\n') + 1))),
    waitForEvent: (predicate) =>
      new Promise<TalkEvent>((resolve, reject) => {
        const already = parsed.find(predicate);
        if (already !== undefined) {
          resolve(already);
          return;
        }
        if (child.exitCode !== null || child.signalCode !== null) {
          reject(new Error('talk has already exited'));
          return;
        }
        waiters.push({ predicate, resolve, reject });
      }),
    waitForOutput: (pattern) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const match = stripAnsi(rawStdout).match(pattern);
        if (match !== null) {
          resolve(match);
          return;
        }
        if (child.exitCode !== null || child.signalCode !== null) {
          reject(new Error('talk has already exited'));
          return;
        }
        outputWaiters.push({ pattern, resolve, reject });
      }),
    done,
  };
}

/** Runs `node bin/talk.js <args>` to completion. */
export function runCli(args: readonly string[], options: CliOptions): Promise<CliResult> {
  return spawnCli(args, options).done;
}

/** Quotes one word for `sh -c`. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs the CLI under a pseudo-terminal of the given size (util-linux `script`), so stdout is a
 * TTY. stdout and stderr arrive merged, as on a terminal; `stdout` holds them ANSI-stripped.
 */
export function runCliInTerminal(
  args: readonly string[],
  options: CliOptions & { columns?: number; rows?: number; ctrlCWhen?: (screen: string) => boolean },
): Promise<CliResult> {
  assertBuilt();
  const command = [
    `stty cols ${options.columns ?? 100} rows ${options.rows ?? 40}`,
    `exec ${[process.execPath, TALK_BIN, ...args].map(shellQuote).join(' ')}`,
  ].join('; ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: options.cwd, env: scrubbedEnv(options.cwd, { TERM: 'xterm-256color', ...options.env }), stdio: 'pipe' });
  const ctrlCWhen = options.ctrlCWhen;
  if (ctrlCWhen) {
    // Ctrl-C typed at the terminal: the pty's line discipline sends SIGINT to the program, once
    // the screen shows what the test waits for.
    let screen = '';
    const onData = (chunk: Buffer): void => {
      screen += stripAnsi(chunk.toString());
      if (!ctrlCWhen(screen)) return;
      child.stdout.off('data', onData);
      child.stdin.end('\u0003');
    };
    child.stdout.on('data', onData);
  }
  return watchChild(child, options, ctrlCWhen ? 'keep' : 'close').done;
}
