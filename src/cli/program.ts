/**
 * Commander wiring: every command, its flags, and normalisation into typed options. Commands
 * get plain typed values; nothing below this layer sees commander.
 *
 * Each command declares the flags it uses (SPEC §1) by name from one table, `FLAGS`; any other
 * flag is a usage error (exit 2). Adding a flag to a command is one name in its list (and, for
 * a flag no command had, one row in `FLAGS` and its field in the normalised options).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../core/errors.js';
import { STATUS_LISTED_JOBS, type CommandContext, type ReporterName, type SharedOptions } from '../commands/context.js';
import { unreachable } from '../core/unreachable.js';
import { parseShard, type Shard } from '../plan/shard.js';

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

function shardArg(value: string): Shard {
  const shard = parseShard(value);
  if ('error' in shard) throw new InvalidArgumentError(shard.error);
  return shard;
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

/** Every flag any command takes, once. A command picks its own by name. */
const FLAGS = {
  backend: () => new Option('--backend <backend>', 'backend to use: cloud, local, or a URL of a `talk serve`'),
  stateDir: () => new Option('--state-dir <dir>', 'where run state lives (default: .talk/ beside the workflow)'),
  reporter: () => new Option('--reporter <name>', 'output style').choices(['auto', 'tty', 'plain', 'json']).default('auto'),
  json: () => new Option('--json', 'same as --reporter json'),
  jsonOnly: () => new Option('--json', 'print JSON instead of text'),
  quiet: () => new Option('--quiet', 'only errors and the final summary'),
  verbose: () => new Option('--verbose', 'request-level detail (never secrets)'),
  color: () => new Option('--no-color', 'no ANSI colours (NO_COLOR is honoured too)'),
  var: () => new Option('--var <key=value>', 'set a workflow variable (repeatable)').argParser(collect).default([]),
  strict: () => new Option('--strict', 'treat warnings (e.g. a --var the workflow does not declare) as errors'),
  concurrency: () => new Option('--concurrency <n>', 'jobs and steps in flight at once').argParser(positiveInt),
  fresh: () => new Option('--fresh', 'ignore an unfinished earlier run and start over'),
  dryRun: () => new Option('--dry-run', 'print the plan instead of running it'),
  watchDryRun: () => new Option('--dry-run', 'list the bundles it would take now and what each would cost; touch nothing'),
  failFast: () => new Option('--fail-fast', 'stop starting new work after the first failure'),
  noReport: () => new Option('--no-report', 'do not write report.html at the end of a foreach run'),
  partial: () => new Option('--partial', 'when not every job fits in the credits, run the ones that do (in plan order) and exit 3'),
  workflow: () => new Option('--workflow <file>', 'the workflow each bundle runs through').makeOptionMandatory(),
  once: () => new Option('--once', 'process what is there (and what settles meanwhile), then exit'),
  poll: () => new Option('--poll', 'poll the folder instead of using file system events (network shares)'),
  onSuccess: () => new Option('--on-success <what>', 'what to do with sources after success').choices(['keep', 'move', 'delete']).default('move'),
  host: () => new Option('--host <host>', 'address to bind').default('127.0.0.1'),
  port: () => new Option('--port <port>', 'port (0 = any free port)').argParser(portNumber).default(0),
  dataDir: () => new Option('--data-dir <dir>', 'persist tokens, sessions, uploads and renders here'),
  latency: () => new Option('--latency <route=ms>', 'added latency for a route; render=MS is the least time a render takes (repeatable)').argParser(collect).default([]),
  fault: () => new Option('--fault <rule>', 'ROUTE:FAULT[:xN|:P%], e.g. sse:drop:x1 (repeatable)').argParser(collect).default([]),
  seed: () => new Option('--seed <n>', 'seed for random faults and silent edits').argParser((v) => Number(v)),
  compat: () => new Option('--compat <name=value>', 'select a contract variant, e.g. errors=status (repeatable)').argParser(collect).default([]),
  force: () => new Option('--force', 'overwrite an existing file'),
  shard: () => new Option('--shard <i/n>', 'run only the i-th of n deterministic, balanced slices of the jobs (by job id), with its own state; for CI matrices').argParser(shardArg),
  queue: () => new Option('--queue <redis-url>', 'the shared queue: redis://host:port[/db] (or TALK_QUEUE)'),
  detach: () => new Option('--detach', 'with --queue: enqueue the jobs and return (follow later with the same command without --detach)'),
  workerConcurrency: () => new Option('--concurrency <n>', 'jobs this worker runs at once (default 4)').argParser(positiveInt),
  all: () => new Option('--all', `list every job of a run (a run of more than ${STATUS_LISTED_JOBS} jobs lists those not done, and counts the rest)`),
  merge: () => new Option('--merge <state-dir...>', 'report the whole of several state dirs together (e.g. the shards of a CI matrix, one state dir each)'),
} satisfies Record<string, () => Option>;

type FlagName = keyof typeof FLAGS;

/** Output flags of commands that draw a run's progress. */
const OUTPUT: FlagName[] = ['reporter', 'json', 'quiet', 'verbose', 'color'];

/** The flags of each command (SPEC §1): only these are accepted. */
export const COMMAND_FLAGS = {
  run: ['backend', 'stateDir', ...OUTPUT, 'var', 'strict', 'concurrency', 'fresh', 'dryRun', 'failFast', 'partial', 'noReport', 'shard', 'queue', 'detach'],
  report: ['backend', 'stateDir', 'jsonOnly', 'color', 'var'],
  validate: ['jsonOnly', 'color', 'var', 'strict'],
  plan: ['backend', 'stateDir', 'jsonOnly', 'color', 'var', 'strict', 'concurrency', 'fresh'],
  watch: ['workflow', 'backend', 'stateDir', ...OUTPUT, 'var', 'strict', 'concurrency', 'once', 'poll', 'onSuccess', 'watchDryRun', 'queue'],
  status: ['stateDir', 'jsonOnly', 'merge', 'queue', 'all'],
  credits: ['backend', 'stateDir', 'jsonOnly'],
  worker: ['queue', 'backend', 'workerConcurrency', 'jsonOnly'],
  queue: ['queue', 'jsonOnly'],
  serve: ['host', 'port', 'dataDir', 'latency', 'fault', 'seed', 'compat'],
  schema: [],
  init: ['force'],
} satisfies Record<string, FlagName[]>;

/** A command's name. */
export type CommandName = keyof typeof COMMAND_FLAGS;

function withFlags(cmd: Command, name: CommandName): Command {
  for (const flag of COMMAND_FLAGS[name] as FlagName[]) cmd.addOption(FLAGS[flag]());
  return cmd;
}

/** Normalised options every command receives; a flag a command does not take reads as its default. */
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
    strict: raw['strict'] === true,
    concurrency: raw['concurrency'] as number | undefined,
    fresh: raw['fresh'] === true,
    dryRun: raw['dryRun'] === true,
    failFast: raw['failFast'] === true,
  };
}

/** The typed options of one command, as its `xCommand(args, options, ctx)` takes them. */
export function optionsFor(name: CommandName, raw: Raw, ctx: CommandContext): SharedOptions & Record<string, unknown> {
  const shared = { ...sharedFrom(raw, ctx), json: raw['json'] === true };
  switch (name) {
    case 'run':
      return { ...shared, partial: raw['partial'] === true, report: raw['report'] !== false, shard: raw['shard'], queue: raw['queue'], detach: raw['detach'] === true };
    case 'report':
      return shared;
    case 'status':
      return { ...shared, merge: raw['merge'], queue: raw['queue'], all: raw['all'] === true };
    case 'validate':
    case 'plan':
    case 'credits':
    case 'schema':
      return shared;
    case 'watch':
      return {
        ...shared,
        workflow: raw['workflow'],
        once: raw['once'] === true,
        poll: raw['poll'] === true,
        onSuccess: (raw['onSuccess']) ?? 'move',
        queue: raw['queue'],
      };
    case 'serve':
      return {
        ...shared,
        host: (raw['host']) ?? '127.0.0.1',
        port: (raw['port']) ?? 0,
        dataDir: raw['dataDir'],
        latency: (raw['latency']) ?? [],
        fault: (raw['fault']) ?? [],
        seed: raw['seed'],
        compat: (raw['compat']) ?? [],
      };
    case 'init':
      return { ...shared, force: raw['force'] === true };
    case 'worker':
    case 'queue':
      return { ...shared, queue: raw['queue'] };
    default:
      return unreachable(name, 'name');
  }
}

/** Runs a command with its positional arguments and typed options; returns the exit code. */
export type Dispatch = (name: CommandName, args: string[], options: SharedOptions & Record<string, unknown>) => Promise<number>;

/** The real commands, each imported when it runs. */
const dispatchCommand = (ctx: CommandContext): Dispatch =>
  async (name, args, options) => {
    switch (name) {
      case 'run':
        return (await import('../commands/run.js')).runCommand(args, options as never, ctx);
      case 'report':
        return (await import('../commands/report.js')).reportCommand(args, options as never, ctx);
      case 'validate':
        return (await import('../commands/validate.js')).validateCommand(args, options as never, ctx);
      case 'plan':
        return (await import('../commands/plan.js')).planCommand(args, options as never, ctx);
      case 'watch':
        return (await import('../commands/watch.js')).watchCommand(args, options as never, ctx);
      case 'status':
        return (await import('../commands/status.js')).statusCommand(args, options as never, ctx);
      case 'credits':
        return (await import('../commands/credits.js')).creditsCommand(args, options as never, ctx);
      case 'serve':
        return (await import('../commands/serve.js')).serveCommand(args, options as never, ctx);
      case 'schema':
        return (await import('../commands/schema.js')).schemaCommand(args, options, ctx);
      case 'init':
        return (await import('../commands/init.js')).initCommand(args, options as never, ctx);
      case 'worker':
        return (await import('../commands/worker.js')).workerCommand(args, options as never, ctx);
      case 'queue':
        return (await import('../commands/queue.js')).queueCommand(args, options as never, ctx);
      default:
        return unreachable(name, 'name');
    }
  };

/**
 * Build the program. `onExit` receives each command's exit code; errors propagate to main.ts.
 * `dispatch` runs the command (tests pass one that records argv → typed options).
 */
export function buildProgram(ctx: CommandContext, onExit: (code: number) => void, dispatch: Dispatch = dispatchCommand(ctx)): Command {
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
  /** One command: its flags from COMMAND_FLAGS, its positional arguments handed on as a list. */
  const command = (name: CommandName, description: string, example: string, args: { spec: string; help: string; fallback?: string }[] = []): Command => {
    const cmd = withFlags(program.command(name), name).description(description).addHelpText('after', examples(example));
    // Subcommands inherit exitOverride and output from the program only when set on each.
    cmd.exitOverride().configureOutput({ writeOut: (s) => ctx.stdout.write(s), writeErr: (s) => ctx.stderr.write(s) });
    for (const arg of args) cmd.argument(arg.spec, arg.help, arg.fallback);
    cmd.action(async (...received: unknown[]) => {
      const positional = received.slice(0, args.length).flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? (v as string[]) : [v as string]));
      const raw = received[args.length] as Raw;
      onExit(await dispatch(name, positional, optionsFor(name, raw, ctx)));
    });
    return cmd;
  };

  command('run', 'validate, plan and execute workflows; resumes an unfinished run automatically', 'talk run examples/hello.yaml', [
    { spec: '<workflow...>', help: 'workflow YAML files' },
  ]);
  command('report', "write the run's self-contained report.html next to its outputs", 'talk report examples/batch.yaml', [{ spec: '[workflow]', help: 'workflow YAML file (default: each workflow with a run recorded in the state dir)' }]);
  command('validate', 'check workflows against the schema and the rules; no network', 'talk validate examples/*.yaml', [{ spec: '<workflow...>', help: 'workflow YAML files' }]);
  command('plan', 'print the step graph, jobs, what a resume would skip and the credit estimate; no network', 'talk plan examples/batch.yaml', [
    { spec: '<workflow>', help: 'workflow YAML file' },
  ]);
  command('watch', 'process every file that appears in a folder exactly once, until stopped', 'talk watch inbox/ --workflow examples/watch.yaml', [
    { spec: '<dir>', help: 'the inbox folder' },
  ]);
  command('status', 'runs known in the state dir: steps, session and render ids, outputs, timelines', 'talk status examples/hello.yaml', [
    { spec: '[workflow]', help: 'workflow YAML file' },
  ]);
  command('credits', 'credit balance on the selected backend (the account a workflow spends from, when named)', 'talk credits examples/hello.yaml', [
    { spec: '[workflow]', help: 'the workflow whose account to show (its backend and state dir)' },
  ]);
  command('worker', 'take jobs from a shared queue (BullMQ on Redis) and run them; many workers share one queue and one state', 'talk worker --queue redis://127.0.0.1:6379 --concurrency 8');
  command('queue', 'the shared queue: status, pause / resume / drain, and limits every worker obeys', 'talk queue limit rate=30/1m at-once=8 --queue redis://127.0.0.1:6379', [
    { spec: '<action>', help: 'status | pause | resume | drain | limit' },
    { spec: '[settings...]', help: 'for limit: rate=N/DURATION, at-once=N, or off' },
  ]);
  command('serve', 'start the local backend: the NemoVideo protocol on loopback, real renders with ffmpeg', 'talk serve --port 8787 --latency render=2000');
  command('schema', 'print the workflow JSON Schema', 'talk schema > workflow.schema.json');
  command('init', 'write a commented starter workflow', 'talk init my-avatar.yaml', [{ spec: '[file]', help: 'where to write it', fallback: 'workflow.yaml' }]);

  return program;
}
