/**
 * Commander wiring: every command, its flags, and normalisation into typed options. Commands
 * get plain typed values; nothing below this layer sees commander.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../core/errors.js';
import type { CommandContext, ReporterName, SharedOptions } from '../commands/context.js';

type Raw = Record<string, unknown>;


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

/**
 * The flags of SPEC §1, one adder each. A command takes only the ones it uses (SPEC §1: any
 * other flag is a usage error, exit 2), so `talk credits --fresh` is refused instead of ignored.
 */
type Adder = (cmd: Command) => Command;
const flag = {
  backend: (c) => c.option('--backend <backend>', 'backend to use: cloud, local, or a URL of a `talk serve`'),
  stateDir: (c) => c.option('--state-dir <dir>', 'where run state lives (default: .talk/ beside the workflow)'),
  reporter: (c) => c.addOption(new Option('--reporter <name>', 'output style').choices(['auto', 'tty', 'plain', 'json']).default('auto')),
  json: (c) => c.option('--json', 'machine-readable output (same as --reporter json where there is one)'),
  quiet: (c) => c.option('--quiet', 'only errors and the final summary'),
  verbose: (c) => c.option('--verbose', 'request-level detail (never secrets)'),
  color: (c) => c.option('--no-color', 'no ANSI colours (NO_COLOR is honoured too)'),
  vars: (c) => c.option('--var <key=value>', 'set a workflow variable (repeatable)', collect, []),
  concurrency: (c) => c.option('--concurrency <n>', 'jobs and steps in flight at once', positiveInt),
  fresh: (c) => c.option('--fresh', 'ignore an unfinished earlier run and start over'),
  failFast: (c) => c.option('--fail-fast', 'stop starting new work after the first failure'),
} satisfies Record<string, Adder>;

/** Add `adders` to a command, in order. */
function withFlags(cmd: Command, ...adders: Adder[]): Command {
  for (const add of adders) add(cmd);
  return cmd;
}

/** The output flags of a command that reports progress. */
const outputFlags: Adder[] = [flag.reporter, flag.json, flag.quiet, flag.verbose, flag.color];

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
 * The commands the program dispatches to, by name. The default loads each command's module
 * when it runs: the bundle then evaluates only the command in use (esbuild defers each module's
 * top level), so `talk validate` does not pay for the runner's HTTP stack or the local backend.
 * Tests pass a table that records what it was given (argv → typed options).
 */
export interface CommandTable {
  run: typeof import('../commands/run.js').runCommand;
  validate: typeof import('../commands/validate.js').validateCommand;
  plan: typeof import('../commands/plan.js').planCommand;
  watch: typeof import('../commands/watch.js').watchCommand;
  status: typeof import('../commands/status.js').statusCommand;
  credits: typeof import('../commands/credits.js').creditsCommand;
  serve: typeof import('../commands/serve.js').serveCommand;
  schema: typeof import('../commands/schema.js').schemaCommand;
  init: typeof import('../commands/init.js').initCommand;
}

const lazyCommands: CommandTable = {
  run: async (...a) => (await import('../commands/run.js')).runCommand(...a),
  validate: async (...a) => (await import('../commands/validate.js')).validateCommand(...a),
  plan: async (...a) => (await import('../commands/plan.js')).planCommand(...a),
  watch: async (...a) => (await import('../commands/watch.js')).watchCommand(...a),
  status: async (...a) => (await import('../commands/status.js')).statusCommand(...a),
  credits: async (...a) => (await import('../commands/credits.js')).creditsCommand(...a),
  serve: async (...a) => (await import('../commands/serve.js')).serveCommand(...a),
  schema: async (...a) => (await import('../commands/schema.js')).schemaCommand(...a),
  init: async (...a) => (await import('../commands/init.js')).initCommand(...a),
};

/**
 * Build the program. `onExit` receives each command's exit code; errors propagate to main.ts.
 */
export function buildProgram(ctx: CommandContext, onExit: (code: number) => void, commands: CommandTable = lazyCommands): Command {
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

  withFlags(program.command('run'), flag.backend, flag.stateDir, ...outputFlags, flag.vars, flag.concurrency, flag.fresh, flag.failFast)
    .description('validate, plan and execute workflows; resumes an unfinished run automatically')
    .argument('<workflow...>', 'workflow YAML files')
    .option('--dry-run', 'print the plan and what it would spend now instead of running it')
    .option('--partial', 'when not every job fits in the credits, run the ones that do (in plan order) and exit 3')
    .addHelpText('after', examples('talk run examples/hello.yaml'))
    .action(async (files: string[], raw: Raw) => onExit(await commands.run(files, { ...sharedFrom(raw, ctx), partial: raw['partial'] === true }, ctx)));

  withFlags(program.command('validate'), flag.reporter, flag.json, flag.color, flag.vars)
    .description('check workflows against the schema and the rules; no network')
    .argument('<workflow...>', 'workflow YAML files')
    .addHelpText('after', examples('talk validate examples/*.yaml'))
    .action(async (files: string[], raw: Raw) =>
      onExit(await commands.validate(files, { ...sharedFrom(raw, ctx), json: raw['json'] === true }, ctx)),
    );

  withFlags(program.command('plan'), flag.backend, flag.stateDir, flag.reporter, flag.json, flag.color, flag.vars, flag.concurrency, flag.fresh)
    .description('print the step graph, jobs, what a resume would skip and the credit estimate; no network')
    .argument('<workflow>', 'workflow YAML file')
    .addHelpText('after', examples('talk plan examples/batch.yaml'))
    .action(async (file: string, raw: Raw) =>
      onExit(await commands.plan([file], { ...sharedFrom(raw, ctx), json: raw['json'] === true }, ctx)),
    );

  withFlags(program.command('watch'), flag.backend, flag.stateDir, ...outputFlags, flag.vars, flag.concurrency)
    .description('process every file that appears in a folder exactly once, until stopped')
    .argument('<dir>', 'the inbox folder')
    .option('--dry-run', 'list the bundles the folder holds now and what each would cost; touch nothing')
    .requiredOption('--workflow <file>', 'the workflow each bundle runs through')
    .option('--once', 'process what is there (and what settles meanwhile), then exit')
    .option('--poll', 'poll the folder instead of using file system events (network shares)')
    .addOption(new Option('--on-success <what>', 'what to do with sources after success').choices(['keep', 'move', 'delete']).default('move'))
    .addHelpText('after', examples('talk watch inbox/ --workflow examples/watch.yaml'))
    .action(async (dir: string, raw: Raw) =>
      onExit(
        await commands.watch(
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

  withFlags(program.command('status'), flag.stateDir, flag.json)
    .description('runs known in the state dir: steps, session and render ids, outputs, timelines')
    .argument('[workflow]', 'workflow YAML file')
    .addHelpText('after', examples('talk status examples/hello.yaml'))
    .action(async (file: string | undefined, raw: Raw) =>
      onExit(await commands.status(file ? [file] : [], { ...sharedFrom(raw, ctx), json: raw['json'] === true }, ctx)),
    );

  withFlags(program.command('credits'), flag.backend, flag.stateDir, flag.reporter, flag.json)
    .description('credit balance on the selected backend')
    .addHelpText('after', examples('talk credits --backend local'))
    .action(async (raw: Raw) => onExit(await commands.credits([], { ...sharedFrom(raw, ctx), json: raw['json'] === true }, ctx)));

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
        await commands.serve(
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
    .action(async () => onExit(await commands.schema([], sharedFrom({}, ctx), ctx)));

  program
    .command('init')
    .description('write a commented starter workflow')
    .argument('[file]', 'where to write it', 'workflow.yaml')
    .option('--force', 'overwrite an existing file')
    .addHelpText('after', examples('talk init my-avatar.yaml'))
    .action(async (file: string, raw: Raw) =>
      onExit(await commands.init([file], { ...sharedFrom({}, ctx), force: raw['force'] === true }, ctx)),
    );

  // A refused flag points at the command's own list of flags.
  for (const cmd of program.commands) cmd.showHelpAfterError(`(run \`talk ${cmd.name()} --help\` for its options)`);
  return program;
}
