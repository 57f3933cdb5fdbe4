import path from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { parse } from 'yaml';
import { ExitCode, UsageError } from '../core/errors.js';
import { displayPath } from '../core/paths.js';
import { ANONYMOUS_GRANT } from '../contract/pricing.js';
import { stateDirFor } from '../state/index.js';
import type { BackendChoice } from '../plan/types.js';
import { chooseBackend, connectBackend } from './connect.js';
import type { CommandContext, SharedOptions } from './context.js';
import { localKnobsFromEnv } from './local-knobs.js';

export interface CreditsOptions extends SharedOptions {
  json: boolean;
}

/** The `backend:` a workflow file names, read without validating the rest of it. */
async function backendOf(file: string): Promise<BackendChoice | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { hint: 'name an existing workflow file' });
  }
  const doc = parse(text) as { backend?: unknown } | null;
  const backend = doc?.backend;
  if (typeof backend !== 'string') return undefined;
  return chooseBackend(backend, undefined);
}

/**
 * `talk credits [workflow]`: the balance on the selected backend. Named, the workflow decides
 * the backend (its `backend:`, unless `--backend`) and the state dir (beside it, unless
 * `--state-dir`), so a local backend shows the account that workflow's runs spend from. The
 * output says which account it is.
 */
export async function creditsCommand(args: string[], options: CreditsOptions, ctx: CommandContext): Promise<number> {
  const file = args[0] === undefined ? undefined : path.resolve(ctx.cwd, args[0]);
  const choice = chooseBackend(options.backend, file === undefined ? undefined : await backendOf(file));
  const stateDir = file === undefined ? path.resolve(ctx.cwd, options.stateDir ?? '.talk') : stateDirFor(file, options.stateDir, ctx.cwd);
  const dataDir = path.join(stateDir, 'local-backend');
  if (choice.kind === 'local' && (await stat(dataDir).catch(() => undefined)) === undefined) {
    // No run has used this local account yet: say what it will hold, and create nothing.
    const grant = localKnobsFromEnv(ctx.env).anonymousCredits ?? ANONYMOUS_GRANT;
    const where = displayPath(dataDir, ctx.cwd);
    const account = `no local backend account in ${where} yet${file === undefined ? '' : ` (runs of ${args[0]} would make it)`}; a new one gets ${grant} credits`;
    if (options.json) ctx.stdout.write(`${JSON.stringify({ backend: 'local', account, exists: false, available: grant, frozen: 0, total: grant })}\n`);
    else {
      ctx.stdout.write(`${account}\n`);
      if (file === undefined && options.stateDir === undefined) ctx.stdout.write('name a workflow (`talk credits hello.yaml`) or its --state-dir to see the account its runs use\n');
    }
    return ExitCode.ok;
  }
  const connection = await connectBackend(choice, stateDir, ctx);
  try {
    const credits = await connection.client.getCredits({ signal: ctx.signal });
    const backend = choice.kind === 'local' ? 'local' : connection.client.baseUrl;
    const account =
      choice.kind === 'local'
        ? `the local backend's account in ${displayPath(path.join(stateDir, 'local-backend'), ctx.cwd)}${file === undefined ? '' : `, which runs of ${args[0]} spend from`}`
        : `the account of ${connection.client.baseUrl}`;
    if (options.json) {
      ctx.stdout.write(`${JSON.stringify({ backend, account, ...(choice.kind === 'local' ? { exists: true } : {}), ...credits })}\n`);
    } else {
      ctx.stdout.write(`${credits.available} credits available · ${credits.frozen} frozen by running turns · ${credits.total} total (${backend})\n`);
      ctx.stdout.write(`account: ${account}\n`);
      if (choice.kind === 'local' && file === undefined && options.stateDir === undefined) {
        ctx.stdout.write('name a workflow (`talk credits hello.yaml`) or its --state-dir to see the account its runs use\n');
      }
      ctx.stdout.write('a generation costs about 100 credits, an edit about 50, an export nothing\n');
    }
    return ExitCode.ok;
  } finally {
    await connection.close();
  }
}
