/**
 * Entry point: the only file that touches `process`. Builds the command context, installs
 * signal handling (first signal aborts cleanly, second exits at once), and maps every error
 * to an exit code through one function.
 */
import { setFlagsFromString } from 'node:v8';
import { CommanderError } from 'commander';
import { ExitCode, InterruptedError, TalkError, WorkflowInvalidError, exitCodeFor } from './core/errors.js';
import { createRedactor, type OutputSink } from './core/redact.js';
import { buildProgram } from './cli/program.js';
import type { CommandContext } from './commands/context.js';

declare const __TALK_VERSION__: string;
const VERSION = typeof __TALK_VERSION__ === 'string' ? __TALK_VERSION__ : '0.0.0-dev';

// A batch keeps its plan, run state and tally live for the whole run (about 70 MB at 10,000
// jobs). V8's default lets the heap grow to several times the live size before it collects,
// so the same 10,000-item run peaked anywhere from 250 to 395 MB. Growing the heap by half at
// most keeps the peak near 250 MB for a few more collections (bench/notes/runner.md). V8
// reads this flag at every collection, so setting it here, before any work, takes effect.
setFlagsFromString('--heap-growing-percent=50');

const redact = createRedactor([process.env['NEMO_TOKEN']]);

function sinkFor(stream: NodeJS.WriteStream): OutputSink {
  return {
    write: (text: string) => {
      stream.write(redact(text));
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

  const ctx: CommandContext = {
    stdout: sinkFor(process.stdout),
    stderr: sinkFor(process.stderr),
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
    version: VERSION,
    nodeVersion: process.version,
  };

  let exitCode: number = ExitCode.ok;
  const program = buildProgram(ctx, (code) => {
    exitCode = code;
  });
  if (process.argv.length <= 2) {
    program.outputHelp();
    return ExitCode.ok;
  }
  try {
    await program.parseAsync(process.argv);
    return exitCode;
  } catch (error) {
    return reportError(error, ctx);
  }
}

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
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  ctx.stderr.write(`talk: internal error (this is a bug in talk, please report it)\n${detail}\n`);
  return ExitCode.failed;
}

process.exitCode = await main();
