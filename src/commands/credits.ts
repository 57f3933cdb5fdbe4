import path from 'node:path';
import { ExitCode } from '../core/errors.js';
import { chooseBackend, connectBackend } from './connect.js';
import type { CommandContext, SharedOptions } from './context.js';

export interface CreditsOptions extends SharedOptions {
  json: boolean;
}

/**
 * `talk credits`: the balance on the selected backend (`--backend`, default cloud). With
 * `--backend local` the in-process local backend uses the state dir (`--state-dir`, default
 * `.talk/` here), so it shows the same account `talk run` used offline.
 */
export async function creditsCommand(_args: string[], options: CreditsOptions, ctx: CommandContext): Promise<number> {
  const choice = chooseBackend(options.backend, undefined);
  const stateDir = path.resolve(ctx.cwd, options.stateDir ?? '.talk');
  const connection = await connectBackend(choice, stateDir, ctx);
  try {
    const credits = await connection.client.getCredits({ signal: ctx.signal });
    const backend = choice.kind === 'local' ? 'local' : connection.client.baseUrl;
    if (options.json || options.reporter === 'json') {
      ctx.stdout.write(`${JSON.stringify({ backend, ...credits })}\n`);
    } else {
      ctx.stdout.write(`${credits.available} credits available · ${credits.frozen} frozen by running turns · ${credits.total} total (${backend})\n`);
      ctx.stdout.write('a generation costs about 100 credits, an edit about 50, an export nothing\n');
    }
    return ExitCode.ok;
  } finally {
    await connection.close();
  }
}
