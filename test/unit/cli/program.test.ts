/**
 * argv → typed options, per command: each command takes its own flags (SPEC §1) and refuses
 * every other as a usage error. The program is built with a dispatch that records what the
 * command would receive, so no command runs.
 */
import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, type CommandName } from '../../../src/cli/program.js';
import type { CommandContext } from '../../../src/commands/context.js';

interface Parsed {
  name: CommandName;
  args: string[];
  options: Record<string, unknown>;
}

async function parse(argv: string[], env: Record<string, string> = {}): Promise<{ parsed: Parsed | undefined; error: CommanderError | undefined; stderr: string }> {
  let stderr = '';
  const sink = (write: (t: string) => void) => ({ write, isTTY: false, columns: undefined });
  const ctx: CommandContext = { stdout: sink(() => undefined), stderr: sink((t) => void (stderr += t)), env, cwd: '/', signal: new AbortController().signal, version: 'test' };
  let parsed: Parsed | undefined;
  const program = buildProgram(
    ctx,
    () => undefined,
    async (name, args, options) => {
      parsed = { name, args, options };
      return 0;
    },
  );
  try {
    await program.parseAsync(['node', 'talk', ...argv]);
    return { parsed, error: undefined, stderr };
  } catch (error) {
    if (error instanceof CommanderError) return { parsed, error, stderr };
    throw error;
  }
}

describe('argv → typed options, one row per command and flag', () => {
  const rows: [string, string[], CommandName, string[], Record<string, unknown>][] = [
    ['run defaults', ['run', 'a.yaml'], 'run', ['a.yaml'], { backend: undefined, stateDir: undefined, reporter: 'auto', quiet: false, verbose: false, color: true, vars: {}, strict: false, concurrency: undefined, fresh: false, dryRun: false, failFast: false, partial: false }],
    ['run files', ['run', 'a.yaml', 'b.yaml'], 'run', ['a.yaml', 'b.yaml'], {}],
    ['run --backend', ['run', 'a.yaml', '--backend', 'local'], 'run', ['a.yaml'], { backend: 'local' }],
    ['run --state-dir', ['run', 'a.yaml', '--state-dir', 's'], 'run', ['a.yaml'], { stateDir: 's' }],
    ['run --reporter', ['run', 'a.yaml', '--reporter', 'plain'], 'run', ['a.yaml'], { reporter: 'plain' }],
    ['run --json', ['run', 'a.yaml', '--json'], 'run', ['a.yaml'], { reporter: 'json', json: true }],
    ['run --quiet', ['run', 'a.yaml', '--quiet'], 'run', ['a.yaml'], { quiet: true }],
    ['run --verbose', ['run', 'a.yaml', '--verbose'], 'run', ['a.yaml'], { verbose: true }],
    ['run --no-color', ['run', 'a.yaml', '--no-color'], 'run', ['a.yaml'], { color: false }],
    ['run NO_COLOR', ['run', 'a.yaml'], 'run', ['a.yaml'], { color: false }],
    ['run --var ×2', ['run', 'a.yaml', '--var', 'a=1', '--var', 'b=x=y'], 'run', ['a.yaml'], { vars: { a: '1', b: 'x=y' } }],
    ['run --strict', ['run', 'a.yaml', '--strict'], 'run', ['a.yaml'], { strict: true }],
    ['run --concurrency', ['run', 'a.yaml', '--concurrency', '8'], 'run', ['a.yaml'], { concurrency: 8 }],
    ['run --fresh', ['run', 'a.yaml', '--fresh'], 'run', ['a.yaml'], { fresh: true }],
    ['run --dry-run', ['run', 'a.yaml', '--dry-run'], 'run', ['a.yaml'], { dryRun: true }],
    ['run --fail-fast', ['run', 'a.yaml', '--fail-fast'], 'run', ['a.yaml'], { failFast: true }],
    ['run --partial', ['run', 'a.yaml', '--partial'], 'run', ['a.yaml'], { partial: true }],
    ['run --shard', ['run', 'a.yaml', '--shard', '2/3'], 'run', ['a.yaml'], { shard: { index: 2, count: 3 } }],
    ['run --queue', ['run', 'a.yaml', '--queue', 'redis://h:1/2'], 'run', ['a.yaml'], { queue: 'redis://h:1/2', detach: false }],
    ['run --detach', ['run', 'a.yaml', '--queue', 'redis://h:1', '--detach'], 'run', ['a.yaml'], { detach: true }],
    ['worker', ['worker', '--queue', 'redis://h:1'], 'worker', [], { queue: 'redis://h:1', concurrency: undefined, backend: undefined, json: false }],
    ['queue status', ['queue', 'status', '--queue', 'redis://h:1', '--json'], 'queue', ['status'], { queue: 'redis://h:1', json: true }],
    ['queue drain', ['queue', 'drain', '--queue', 'redis://h:1'], 'queue', ['drain'], { json: false }],
    ['queue limit', ['queue', 'limit', 'rate=30/1m', 'at-once=8', '--queue', 'redis://h:1'], 'queue', ['limit', 'rate=30/1m', 'at-once=8'], {}],
    ['worker --concurrency --backend --json', ['worker', '--queue', 'redis://h:1', '--concurrency', '6', '--backend', 'http://b:2', '--json'], 'worker', [], { concurrency: 6, backend: 'http://b:2', json: true }],
    ['validate files in order', ['validate', 'b.yaml', 'a.yaml'], 'validate', ['b.yaml', 'a.yaml'], { json: false }],
    ['validate --json', ['validate', '--json', 'a.yaml'], 'validate', ['a.yaml'], { json: true }],
    ['validate --var', ['validate', 'a.yaml', '--var', 'who=Ada'], 'validate', ['a.yaml'], { vars: { who: 'Ada' } }],
    ['validate --strict', ['validate', 'a.yaml', '--strict'], 'validate', ['a.yaml'], { strict: true }],
    ['watch --strict', ['watch', 'inbox', '--workflow', 'w.yaml', '--strict'], 'watch', ['inbox'], { strict: true }],
    ['validate --no-color', ['validate', 'a.yaml', '--no-color'], 'validate', ['a.yaml'], { color: false }],
    ['plan', ['plan', 'a.yaml'], 'plan', ['a.yaml'], { json: false, fresh: false }],
    ['plan --backend', ['plan', 'a.yaml', '--backend', 'http://127.0.0.1:1'], 'plan', ['a.yaml'], { backend: 'http://127.0.0.1:1' }],
    ['plan --state-dir', ['plan', 'a.yaml', '--state-dir', 's'], 'plan', ['a.yaml'], { stateDir: 's' }],
    ['plan --json', ['plan', 'a.yaml', '--json'], 'plan', ['a.yaml'], { json: true }],
    ['plan --var', ['plan', 'a.yaml', '--var', 'k=v'], 'plan', ['a.yaml'], { vars: { k: 'v' } }],
    ['plan --concurrency', ['plan', 'a.yaml', '--concurrency', '2'], 'plan', ['a.yaml'], { concurrency: 2 }],
    ['plan --fresh', ['plan', 'a.yaml', '--fresh'], 'plan', ['a.yaml'], { fresh: true }],
    ['watch', ['watch', 'in', '--workflow', 'w.yaml'], 'watch', ['in'], { workflow: 'w.yaml', once: false, poll: false, onSuccess: 'move', dryRun: false }],
    ['watch --once', ['watch', 'in', '--workflow', 'w.yaml', '--once'], 'watch', ['in'], { once: true }],
    ['watch --poll', ['watch', 'in', '--workflow', 'w.yaml', '--poll'], 'watch', ['in'], { poll: true }],
    ['watch --on-success', ['watch', 'in', '--workflow', 'w.yaml', '--on-success', 'keep'], 'watch', ['in'], { onSuccess: 'keep' }],
    ['watch --dry-run', ['watch', 'in', '--workflow', 'w.yaml', '--dry-run'], 'watch', ['in'], { dryRun: true }],
    ['watch --backend', ['watch', 'in', '--workflow', 'w.yaml', '--backend', 'local'], 'watch', ['in'], { backend: 'local' }],
    ['watch --state-dir', ['watch', 'in', '--workflow', 'w.yaml', '--state-dir', 's'], 'watch', ['in'], { stateDir: 's' }],
    ['watch --reporter', ['watch', 'in', '--workflow', 'w.yaml', '--reporter', 'json'], 'watch', ['in'], { reporter: 'json' }],
    ['watch --concurrency', ['watch', 'in', '--workflow', 'w.yaml', '--concurrency', '3'], 'watch', ['in'], { concurrency: 3 }],
    ['watch --var', ['watch', 'in', '--workflow', 'w.yaml', '--var', 'k=v'], 'watch', ['in'], { vars: { k: 'v' } }],
    ['report', ['report'], 'report', [], { json: false }],
    ['report file --json', ['report', 'a.yaml', '--json'], 'report', ['a.yaml'], { json: true }],
    ['watch --queue', ['watch', 'in', '--workflow', 'w.yaml', '--queue', 'redis://h:1'], 'watch', ['in'], { queue: 'redis://h:1' }],
    ['status', ['status'], 'status', [], { json: false }],
    ['status file', ['status', 'a.yaml'], 'status', ['a.yaml'], {}],
    ['status --state-dir', ['status', '--state-dir', 's'], 'status', [], { stateDir: 's' }],
    ['status --json', ['status', 'a.yaml', '--json'], 'status', ['a.yaml'], { json: true }],
    ['status --queue', ['status', 'a.yaml', '--queue', 'redis://h:1'], 'status', ['a.yaml'], { queue: 'redis://h:1' }],
    ['status --merge', ['status', 'a.yaml', '--merge', 's1', 's2'], 'status', ['a.yaml'], { merge: ['s1', 's2'] }],
    ['status --all', ['status', 'a.yaml', '--all'], 'status', ['a.yaml'], { all: true }],
    ['credits', ['credits'], 'credits', [], { backend: undefined }],
    ['credits workflow', ['credits', 'a.yaml'], 'credits', ['a.yaml'], {}],
    ['credits --backend', ['credits', '--backend', 'local'], 'credits', [], { backend: 'local' }],
    ['credits --state-dir', ['credits', '--state-dir', 's'], 'credits', [], { stateDir: 's' }],
    ['credits --json', ['credits', '--json'], 'credits', [], { json: true }],
    ['serve defaults', ['serve'], 'serve', [], { host: '127.0.0.1', port: 0, dataDir: undefined, latency: [], fault: [], seed: undefined, compat: [] }],
    ['serve --host', ['serve', '--host', '0.0.0.0'], 'serve', [], { host: '0.0.0.0' }],
    ['serve --port', ['serve', '--port', '8787'], 'serve', [], { port: 8787 }],
    ['serve --data-dir', ['serve', '--data-dir', 'd'], 'serve', [], { dataDir: 'd' }],
    ['serve --latency ×2', ['serve', '--latency', 'render=10', '--latency', 'sse=5'], 'serve', [], { latency: ['render=10', 'sse=5'] }],
    ['serve --fault', ['serve', '--fault', 'sse:drop:x1'], 'serve', [], { fault: ['sse:drop:x1'] }],
    ['serve --seed', ['serve', '--seed', '7'], 'serve', [], { seed: 7 }],
    ['serve --compat', ['serve', '--compat', 'errors=status'], 'serve', [], { compat: ['errors=status'] }],
    ['schema', ['schema'], 'schema', [], {}],
    ['init default file', ['init'], 'init', ['workflow.yaml'], { force: false }],
    ['init file --force', ['init', 'x.yaml', '--force'], 'init', ['x.yaml'], { force: true }],
  ];
  it.each(rows)('%s', async (title, argv, name, args, expected) => {
    const { parsed, error } = await parse(argv, title.includes('NO_COLOR') ? { NO_COLOR: '1' } : {});
    expect(error).toBeUndefined();
    expect(parsed?.name).toBe(name);
    expect(parsed?.args).toEqual(args);
    expect(parsed?.options).toMatchObject(expected);
  });
});

describe('a flag another command takes is a usage error', () => {
  const refused: [string, string[]][] = [
    ['credits --fresh', ['credits', '--backend', 'local', '--fresh']],
    ['credits --var', ['credits', '--var', 'a=b']],
    ['credits --dry-run', ['credits', '--dry-run']],
    ['validate --backend', ['validate', 'hello.yaml', '--backend', 'htp://x']],
    ['validate --fresh', ['validate', 'hello.yaml', '--fresh']],
    ['plan --fail-fast', ['plan', 'a.yaml', '--fail-fast']],
    ['status --var', ['status', '--var', 'a=b']],
    ['status --backend', ['status', '--backend', 'local']],
    ['watch --fail-fast', ['watch', 'in', '--workflow', 'w.yaml', '--fail-fast']],
    ['watch --fresh', ['watch', 'in', '--workflow', 'w.yaml', '--fresh']],
    ['schema --json', ['schema', '--json']],
    ['init --backend', ['init', '--backend', 'local']],
    ['serve --state-dir', ['serve', '--state-dir', 's']],
    ['run --force', ['run', 'a.yaml', '--force']],
    ['run --once', ['run', 'a.yaml', '--once']],
    ['plan --shard', ['plan', 'a.yaml', '--shard', '1/2']],
    ['watch --shard', ['watch', 'in', '--workflow', 'w.yaml', '--shard', '1/2']],
    ['run --merge', ['run', 'a.yaml', '--merge', 's']],
    ['worker --state-dir', ['worker', '--queue', 'redis://h:1', '--state-dir', 's']],
    ['worker --fresh', ['worker', '--queue', 'redis://h:1', '--fresh']],
    ['worker --shard', ['worker', '--queue', 'redis://h:1', '--shard', '1/2']],
    ['plan --queue', ['plan', 'a.yaml', '--queue', 'redis://h:1']],
    ['queue --backend', ['queue', 'status', '--queue', 'redis://h:1', '--backend', 'local']],
  ];
  it.each(refused)('%s', async (_title, argv) => {
    const { parsed, error, stderr } = await parse(argv);
    expect(parsed).toBeUndefined();
    expect(error?.code).toBe('commander.unknownOption');
    expect(stderr).toMatch(/unknown option/);
  });

  it('watch needs --workflow; a bad --concurrency is refused', async () => {
    expect((await parse(['watch', 'in'])).error?.code).toBe('commander.missingMandatoryOptionValue');
    expect((await parse(['run', 'a.yaml', '--concurrency', '0'])).error?.code).toBe('commander.invalidArgument');
    for (const bad of ['0/3', '4/3', 'a/b']) expect((await parse(['run', 'a.yaml', '--shard', bad])).error?.code, bad).toBe('commander.invalidArgument');
  });
});

describe('the package', () => {
  it('is published under a name of its own (the registry name `talk` is another package) and keeps the `talk` command', async () => {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { name: string; bin: Record<string, string> };
    expect(pkg.name).toBe('talking-avatar-cli');
    expect(pkg.bin).toEqual({ talk: 'bin/talk.js' });
    const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
    expect(readme).toMatch(/npm link {2,}# puts `talk` on the PATH/);
    expect(readme).not.toMatch(/^npx talk /m);
    expect(readme).toMatch(/TALK_LOCAL_LATENCY=render=6000,sse=1500/);
  });
});
