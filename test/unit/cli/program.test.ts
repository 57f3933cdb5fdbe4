/**
 * argv → typed options, per command: each command takes its own flags and refuses the rest
 * (SPEC §1: a usage error, exit 2). The command table records what it was given; nothing runs.
 */
import { describe, expect, it } from 'vitest';
import { CommanderError } from 'commander';
import { buildProgram, type CommandTable } from '../../../src/cli/program.js';
import type { CommandContext } from '../../../src/commands/context.js';

interface Call {
  command: keyof CommandTable;
  args: string[];
  options: Record<string, unknown>;
}

async function parse(argv: string[]): Promise<{ call?: Call; error?: CommanderError; stderr: string }> {
  let stderr = '';
  const sink = { write: (t: string) => void (stderr += t), isTTY: false, columns: undefined };
  const ctx: CommandContext = { stdout: sink, stderr: sink, env: {}, cwd: '/work', signal: new AbortController().signal, version: 'test' };
  let call: Call | undefined;
  const record = (command: keyof CommandTable) => (async (args: string[], options: Record<string, unknown>) => {
    call = { command, args, options };
    return 0;
  }) as never;
  const table = Object.fromEntries((['run', 'validate', 'plan', 'watch', 'status', 'credits', 'serve', 'schema', 'init'] as const).map((n) => [n, record(n)])) as unknown as CommandTable;
  const program = buildProgram(ctx, () => undefined, table);
  try {
    await program.parseAsync(['node', 'talk', ...argv]);
  } catch (error) {
    if (error instanceof CommanderError) return { error, stderr };
    throw error;
  }
  return { ...(call ? { call } : {}), stderr };
}

describe('talk argv → typed options', () => {
  it.each([
    [['run', 'w.yaml'], 'run', { backend: undefined, stateDir: undefined, reporter: 'auto', fresh: false, dryRun: false, failFast: false, partial: false, vars: {} }],
    [['run', 'a.yaml', 'b.yaml', '--backend', 'local', '--state-dir', 's', '--json', '--var', 'a=1', '--var', 'b=x=y', '--concurrency', '3', '--fresh', '--fail-fast', '--partial', '--dry-run'], 'run',
      { backend: 'local', stateDir: 's', reporter: 'json', vars: { a: '1', b: 'x=y' }, concurrency: 3, fresh: true, failFast: true, partial: true, dryRun: true }],
    [['run', 'w.yaml', '--quiet', '--verbose', '--no-color', '--reporter', 'plain'], 'run', { quiet: true, verbose: true, color: false, reporter: 'plain' }],
    [['validate', 'a.yaml', '--json', '--var', 'k=v'], 'validate', { json: true, vars: { k: 'v' } }],
    [['plan', 'w.yaml', '--backend', 'http://127.0.0.1:8787', '--state-dir', 's', '--fresh', '--concurrency', '2'], 'plan', { backend: 'http://127.0.0.1:8787', stateDir: 's', fresh: true, concurrency: 2, json: false }],
    [['watch', 'inbox', '--workflow', 'w.yaml', '--once', '--poll', '--on-success', 'keep', '--dry-run', '--backend', 'local'], 'watch', { workflow: 'w.yaml', once: true, poll: true, onSuccess: 'keep', dryRun: true, backend: 'local' }],
    [['status', 'w.yaml', '--state-dir', 's', '--json'], 'status', { stateDir: 's', json: true }],
    [['credits', '--backend', 'local', '--state-dir', 's', '--json'], 'credits', { backend: 'local', stateDir: 's', json: true }],
    [['serve', '--port', '0', '--latency', 'render=10', '--fault', 'sse:drop:x1', '--seed', '3', '--compat', 'errors=status', '--data-dir', 'd'], 'serve',
      { port: 0, latency: ['render=10'], fault: ['sse:drop:x1'], seed: 3, compat: ['errors=status'], dataDir: 'd', host: '127.0.0.1' }],
    [['init', 'x.yaml', '--force'], 'init', { force: true }],
  ] as const)('%j → %s', async (argv, command, expected) => {
    const { call, error } = await parse([...argv]);
    expect(error).toBeUndefined();
    expect(call?.command).toBe(command);
    expect(call?.options).toMatchObject(expected);
  });

  it.each([
    ['credits', '--fresh'],
    ['credits', '--var', 'a=b'],
    ['credits', '--dry-run'],
    ['validate', 'w.yaml', '--backend', 'htp://x'],
    ['validate', 'w.yaml', '--state-dir', 's'],
    ['plan', 'w.yaml', '--fail-fast'],
    ['watch', 'inbox', '--workflow', 'w.yaml', '--fresh'],
    ['watch', 'inbox', '--workflow', 'w.yaml', '--partial'],
    ['status', '--backend', 'local'],
    ['status', '--fresh'],
    ['schema', '--json'],
    ['init', '--backend', 'local'],
    ['serve', '--var', 'a=b'],
    ['run', 'w.yaml', '--concurrency', '0'],
    ['run', 'w.yaml', '--reporter', 'fancy'],
  ])('refuses %j as a usage error naming the flag', async (...argv) => {
    const { call, error, stderr } = await parse(argv);
    expect(call).toBeUndefined();
    expect(error).toBeInstanceOf(CommanderError);
    expect(stderr).toMatch(/error: /);
    expect(stderr).toMatch(new RegExp(`talk ${argv[0]} --help`));
  });
});
