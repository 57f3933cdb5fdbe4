/**
 * Entry point: the only file that touches `process`. Builds the command context, installs
 * signal handling (first signal aborts cleanly, second exits at once), and maps every error
 * to an exit code through one function.
 */
import { CommanderError } from 'commander';
import { ExitCode, InterruptedError, TalkError, WorkflowInvalidError, environmentErrorFrom, exitCodeFor } from './core/errors.js';
import { createRedactor, type OutputSink } from './core/redact.js';
import { invocation, spellCommands } from './cli/invocation.js';
import { buildProgram } from './cli/program.js';
import type { CommandContext } from './commands/context.js';

declare const __TALK_VERSION__: string;
const VERSION = typeof __TALK_VERSION__ === 'string' ? __TALK_VERSION__ : '0.0.0-dev';

// V8 flags for the commands that run for long (bench/notes/runner.md, bench/notes/backend.md):
// - `--heap-growing-percent=50`: a batch keeps its plan, run state and tally live for the
//   whole run (about 70 MB at 10,000 jobs). V8's default lets the heap grow to several times
//   the live size before it collects, so the same 10,000-item run peaked anywhere from 250 to
//   395 MB; growing the heap by half at most keeps the peak near 250 MB for a few more
//   collections. V8 reads it at every collection, so setting it at the start of main works.
// - `--liftoff-only` (not for `serve`): undici parses HTTP with llhttp compiled to
//   WebAssembly, and after some megabytes V8 tiers its one big parsing function up to
//   TurboFan, a compile of ~100 ms of CPU whose 29 MB of zone memory stay in a thread's malloc
//   arena: a third of a 200 MB download's peak RSS. On V8's baseline compiler alone parsing
//   is no slower that a batch shows. `talk serve` keeps TurboFan for the face finder's
//   WebAssembly (a detection takes ≈ 25 % longer without); a run on `backend: local` pays that.
// Commands that print and end set nothing (and leave node:v8 unloaded, ≈ 1.5 ms): `plan` too,
// whose 100,000-item plan spent 2 s more of CPU collecting under the cap to peak ≈ 60 MB lower,
// far under its 600 MB. bin/talk.js sets the same flags first, from the same rule, before it
// compiles anything: V8 accepts cached code only under the flags it was made with.
const SHORT_LIVED = new Set(['validate', 'plan', 'schema', 'init', 'help', '--help', '-h', '--version', '-V']);

/** The V8 flags for `command` (argv[2]), or '' (see above). */
function v8FlagsFor(command: string | undefined): string {
  if (command === undefined || SHORT_LIVED.has(command)) return '';
  return command === 'serve' ? '--heap-growing-percent=50' : '--heap-growing-percent=50 --liftoff-only';
}

const redact = createRedactor([process.env['NEMO_TOKEN']]);

/**
 * Set when a reader closed our stdout or stderr (`talk … | head`): writing on would only raise
 * EPIPE again, so the sink goes quiet and the run stops as on SIGINT, its state saved.
 */
let closedPipe: string | undefined;
let onClosedPipe: (() => void) | undefined;

/** How the user types talk here: hints spell their backticked commands that way. */
// Found on first use (it reads the PATH), not at start-up: most runs print no hint.
let invoked: string | undefined;
const invokedAs = (): string => (invoked ??= invocation({ script: process.argv[1], env: process.env, cwd: process.cwd() }));
/** stdout carries data (JSON, NDJSON, the schema), left word for word; text for people is spelled. */
const dataOnStdout = stdoutIsData(process.argv.slice(2));

function stdoutIsData(args: string[]): boolean {
  if (args[0] === 'schema') return true;
  return args.some((a, i) => a === '--json' || a === '--reporter=json' || (a === '--reporter' && args[i + 1] === 'json'));
}

function sinkFor(stream: NodeJS.WriteStream, name: 'stdout' | 'stderr'): OutputSink {
  const spell = name === 'stderr' || !dataOnStdout;
  let closed = false;
  // Without a listener a closed pipe is an unhandled 'error' event: a stack trace and exit 1.
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
    closed = true;
    closedPipe ??= name;
    onClosedPipe?.();
  });
  return {
    write: (text: string) => {
      if (closed) return;
      const safe = redact(text);
      stream.write(spell && safe.includes('`talk ') ? spellCommands(safe, invokedAs()) : safe);
    },
    get isTTY() {
      return stream.isTTY === true;
    },
    get columns() {
      return stream.columns;
    },
  };
}

async function main(): Promise<number> {
  const flags = v8FlagsFor(process.argv[2]);
  if (flags !== '') (await import('node:v8')).setFlagsFromString(flags);
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (name: NodeJS.Signals): void => {
    signals += 1;
    if (signals === 1) {
      controller.abort(new InterruptedError(`received ${name}: stopping after state is saved`));
      return;
    }
    // Second signal: state is written at every transition, so leaving now loses nothing.
    process.exit(ExitCode.interrupted);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  onClosedPipe = () => {
    if (!controller.signal.aborted) controller.abort(new InterruptedError(`${closedPipe ?? 'output'} was closed: stopping after state is saved`));
  };

  const ctx: CommandContext = {
    stdout: sinkFor(process.stdout, 'stdout'),
    stderr: sinkFor(process.stderr, 'stderr'),
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
    version: VERSION,
    nodeVersion: process.version,
    get program() {
      return invokedAs();
    },
  };

  let exitCode: number = ExitCode.ok;
  const program = buildProgram(ctx, (code) => {
    exitCode = code;
  });
  if (process.argv.length <= 2) {
    program.outputHelp();
    return ExitCode.ok;
  }
  let code: number;
  try {
    await program.parseAsync(process.argv);
    code = exitCode;
  } catch (error) {
    code = reportError(error, ctx);
  }
  // A reader that stopped early (`| head`) took what it wanted: for output-only commands that
  // is success. A run or a watcher stopped as on SIGINT (state saved, 130): the work is unfinished.
  if (closedPipe !== undefined && !STOPPABLE.has(process.argv[2] ?? '') && code === ExitCode.interrupted) return ExitCode.ok;
  return code;
}

/** Commands whose work (not just output) a closed pipe stops. */
const STOPPABLE = new Set(['run', 'watch', 'worker']);

function reportError(error: unknown, ctx: CommandContext): number {
  if (error instanceof CommanderError) {
    // Commander already printed its message (with a suggestion for near misses).
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return ExitCode.ok;
    return ExitCode.invalid;
  }
  if (error instanceof WorkflowInvalidError) {
    // The command printed the diagnostics; nothing more to say.
    return exitCodeFor(error);
  }
  if (error instanceof TalkError) {
    ctx.stderr.write(`talk: ${error.message}\n`);
    if (error.hint) ctx.stderr.write(`  → ${error.hint}\n`);
    return exitCodeFor(error);
  }
  const environment = environmentErrorFrom(error);
  if (environment !== undefined) {
    ctx.stderr.write(`talk: ${environment.message}\n`);
    if (environment.hint) ctx.stderr.write(`  → ${environment.hint}\n`);
    return exitCodeFor(environment);
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  ctx.stderr.write(`talk: internal error (this is a bug in talk, please report it)\n${detail}\n`);
  return ExitCode.failed;
}

// A promise, not a top-level await: the bundle is CommonJS (scripts/build.mjs says why).
void main().then((code) => {
  process.exitCode = code;
});
