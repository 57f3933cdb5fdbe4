/**
 * Commander wiring: every command, its flags, and normalisation into typed options. Commands
 * get plain typed values; nothing below this layer sees commander.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../core/errors.js';
import type { CommandContext, ReporterName, SharedOptions } from '../commands/context.js';

type Raw = Record<string, unknown>;

// Commands are imported when they run: the bundle then evaluates only the command in use
// (esbuild defers each module's top level), so `talk validate` does not pay for the
// runner's HTTP stack or the local backend at start-up.

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number between 0 and 65535');
  return n;
}

function parseVars(pairs: string[]): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--var expects key=value, got "${pair}"`, { hint: 'write it as --var name=value' });
    vars[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return vars;
}

/** Shared flags (SPEC §1), added to every command that talks about runs. */
function withShared(cmd: Command): Command {
  return cmd
    .option('--backend <backend>', 'backend to use: cloud, local, or a URL of a `talk serve`')
    .option('--state-dir <dir>', 'where run state lives (default: .talk/ beside the workflow)')
    .addOption(new Option('--reporter <name>', 'output style').choices(['auto', 'tty', 'plain', 'json']).default('auto'))
    .option('--json', 'same as --reporter json')
    .option('--quiet', 'only errors and the final summary')
    .option('--verbose', 'request-level detail (never secrets)')
    .option('--no-color', 'no ANSI colours (NO_COLOR is honoured too)')
    .option('--var <key=value>', 'set a workflow variable (repeatable)', collect, [])
    .option('--concurrency <n>', 'jobs and steps in flight at once', positiveInt)
    .option('--fresh', 'ignore an unfinished earlier run and start over')
    .option('--dry-run', 'print the plan instead of running it')
    .option('--fail-fast', 'stop starting new work after the first failure');
}

function sharedFrom(raw: Raw, ctx: CommandContext): SharedOptions {
  const reporter: ReporterName = raw['json'] === true ? 'json' : ((raw['reporter'] as ReporterName | undefined) ?? 'auto');
  const noColorEnv = ctx.env['NO_COLOR'] !== undefined && ctx.env['NO_COLOR'] !== '';
  return {
    backend: raw['backend'] as string | undefined,
    stateDir: raw['stateDir'] as string | undefined,
    reporter,
    quiet: raw['quiet'] === true,
    verbose: raw['verbose'] === true,
    color: raw['color'] !== false && !noColorEnv,
    vars: parseVars((raw['var'] as string[] | undefined) ?? []),
    concurrency: raw['concurrency'] as number | undefined,
    fresh: raw['fresh'] === true,
    dryRun: raw['dryRun'] === true,
    failFast: raw['failFast'] === true,
  };
}

/**
 * Build the program. `onExit` receives each command's exit code; errors propagate to main.ts.
 */
export function buildProgram(ctx: CommandContext, onExit: (code: number) => void): Command {
  const program = new Command('talk')
    .description('Turn portraits and voice-overs into talking-avatar videos with declarative YAML workflows.')
    .version(ctx.version, '-V, --version')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(run `talk --help` for usage)')
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    })
    .exitOverride()
    .addHelpText(
      'after',
      [
        '',
        'Get started (offline, on the local backend):',
        '  talk init my-avatar.yaml      write a commented starter workflow',
        '  talk run my-avatar.yaml       validate, render, download the MP4',
        '',
        'Output: --reporter auto|tty|plain|json (--json), --quiet, --verbose, --no-color / NO_COLOR.',
        'Every command has an example: talk <command> --help',
        '',
      ].join('\n'),
    );

  const examples = (text: string): string => `\nExample:\n  ${text}\n`;

  withShared(program.command('run'))
    .description('validate, plan and execute workflows; resumes an unfinished run automatically')
    .argument('<workflow...>', 'workflow YAML files')
    .option('--no-report', 'do not write report.html at the end of a foreach run')
    .addHelpText('after', examples('talk run examples/hello.yaml'))
    .action(async (files: string[], raw: Raw) =>
      onExit(await (await import('../commands/run.js')).runCommand(files, { ...sharedFrom(raw, ctx), report: raw['report'] !== false }, ctx)),
    );

  withShared(program.command('report'))
    .description("write the run's self-contained report.html next to its outputs")
    .argument('[workflow]', 'workflow YAML file')
    .addHelpText('after', examples('talk report examples/batch.yaml'))
    .action(async (file: string | undefined, raw: Raw) =>
      onExit(await (await import('../commands/report.js')).reportCommand(file ? [file] : [], sharedFrom(raw, ctx), ctx)),
    );

  withShared(program.command('validate'))
    .description('check workflows against the schema and the rules; no network')
    .argument('<workflow...>', 'workflow YAML files')
    .addHelpText('after', examples('talk validate examples/*.yaml'))
    .action(async (files: string[], raw: Raw) =>
      onExit(await (await import('../commands/validate.js')).validateCommand(files, { ...sharedFrom(raw, ctx), json: raw['json'] === true }, ctx)),
    );

  withShared(program.command('plan'))
    .description('print the step graph, jobs, what a resume would skip and the credit estimate; no network')
    .argument('<workflow>', 'workflow YAML file')
    .addHelpText('after', examples('talk plan examples/batch.yaml'))
    .action(async (file: string, raw: Raw) =>
      onExit(await (await import('../commands/plan.js')).planCommand([file], { ...sharedFrom(raw, ctx), json: raw['json'] === true }, ctx)),
    );

  withShared(program.command('watch'))
    .description('process every file that appears in a folder exactly once, until stopped')
    .argument('<dir>', 'the inbox folder')
    .requiredOption('--workflow <file>', 'the workflow each bundle runs through')
    .option('--once', 'process what is there (and what settles meanwhile), then exit')
    .option('--poll', 'poll the folder instead of using file system events (network shares)')
    .addOption(new Option('--on-success <what>', 'what to do with sources after success').choices(['keep', 'move', 'delete']).default('move'))
    .addHelpText('after', examples('talk watch inbox/ --workflow examples/watch.yaml'))
    .action(async (dir: string, raw: Raw) =>
      onExit(
        await (await import('../commands/watch.js')).watchCommand(
          [dir],
          {
            ...sharedFrom(raw, ctx),
            workflow: raw['workflow'] as string | undefined,
            once: raw['once'] === true,
            poll: raw['poll'] === true,
            onSuccess: (raw['onSuccess'] as 'keep' | 'move' | 'delete' | undefined) ?? 'move',
          },
          ctx,
        ),
      ),
    );

  withShared(program.command('status'))
    .description('runs known in the state dir: steps, session and render ids, outputs, timelines')
    .argument('[workflow]', 'workflow YAML file')
    .addHelpText('after', examples('talk status examples/hello.yaml'))
    .action(async (file: string | undefined, raw: Raw) =>
      onExit(await (await import('../commands/status.js')).statusCommand(file ? [file] : [], { ...sharedFrom(raw, ctx), json: raw['json'] === true }, ctx)),
    );

  withShared(program.command('credits'))
    .description('credit balance on the selected backend')
    .addHelpText('after', examples('talk credits --backend local'))
    .action(async (raw: Raw) => onExit(await (await import('../commands/credits.js')).creditsCommand([], { ...sharedFrom(raw, ctx), json: raw['json'] === true }, ctx)));

  program
    .command('serve')
    .description('start the local backend: the NemoVideo protocol on loopback, real renders with ffmpeg')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', portNumber, 0)
    .option('--data-dir <dir>', 'persist tokens, sessions, uploads and renders here')
    .option('--latency <route=ms>', 'added latency for a route; render=MS is the least time a render takes (repeatable)', collect, [])
    .option('--fault <rule>', 'ROUTE:FAULT[:xN|:P%], e.g. sse:drop:x1 (repeatable)', collect, [])
    .option('--seed <n>', 'seed for random faults and silent edits', (v) => Number(v))
    .option('--compat <name=value>', 'select a contract variant, e.g. errors=status (repeatable)', collect, [])
    .addHelpText('after', examples('talk serve --port 8787 --latency render=2000'))
    .action(async (raw: Raw) =>
      onExit(
        await (await import('../commands/serve.js')).serveCommand(
          [],
          {
            ...sharedFrom({}, ctx),
            host: (raw['host'] as string | undefined) ?? '127.0.0.1',
            port: (raw['port'] as number | undefined) ?? 0,
            dataDir: raw['dataDir'] as string | undefined,
            latency: (raw['latency'] as string[] | undefined) ?? [],
            fault: (raw['fault'] as string[] | undefined) ?? [],
            seed: raw['seed'] as number | undefined,
            compat: (raw['compat'] as string[] | undefined) ?? [],
          },
          ctx,
        ),
      ),
    );

  program
    .command('schema')
    .description('print the workflow JSON Schema')
    .addHelpText('after', examples('talk schema > workflow.schema.json'))
    .action(async () => onExit(await (await import('../commands/schema.js')).schemaCommand([], sharedFrom({}, ctx), ctx)));

  program
    .command('init')
    .description('write a commented starter workflow')
    .argument('[file]', 'where to write it', 'workflow.yaml')
    .option('--force', 'overwrite an existing file')
    .addHelpText('after', examples('talk init my-avatar.yaml'))
    .action(async (file: string, raw: Raw) =>
      onExit(await (await import('../commands/init.js')).initCommand([file], { ...sharedFrom({}, ctx), force: raw['force'] === true }, ctx)),
    );

  return program;
}
