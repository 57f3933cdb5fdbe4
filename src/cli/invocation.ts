/**
 * How the user can type this program where they are, for the commands `talk` prints in hints
 * ("resume with: …", "next: …", "run `talk status`"). `talk` only when the `talk` on their
 * PATH is this program: outside this repository `npx talk` runs an unrelated registry package,
 * and after `npm ci` nothing puts `talk` on the PATH.
 *
 * - `TALK_PROGRAM` set: that (a wrapper script or image says how it is called).
 * - Started by npx or an npm script: `npx --no-install talk` (the local install's bin).
 * - The `talk` found on PATH is this file (global install, `npm link`): `talk`.
 * - Otherwise: `node <path to bin/talk.js>`, relative to the folder when it is inside it.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { shellQuote } from '../core/shell-quote.js';

/** What the detection looks at (main.ts passes the process's; tests their own). */
export interface InvocationProbe {
  /** The script node was started with (`process.argv[1]`). */
  script: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

function real(file: string): string | undefined {
  try {
    return realpathSync(file);
  } catch {
    return undefined;
  }
}

/** The command words that start this program where the user is. */
export function invocation(probe: InvocationProbe): string {
  const pinned = probe.env['TALK_PROGRAM']?.trim();
  if (pinned) return pinned;
  if (probe.script === undefined) return 'talk';
  const script = real(probe.script) ?? path.resolve(probe.cwd, probe.script);
  const npm = probe.env['npm_command'];
  if (npm === 'exec' || npm === 'run-script') return 'npx --no-install talk';
  for (const dir of (probe.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && real(path.join(dir, 'talk')) === script) return 'talk';
  }
  const relative = path.relative(probe.cwd, script);
  const shown = relative.startsWith('..') || path.isAbsolute(relative) ? script : `.${path.sep}${relative}`;
  return `node ${shellQuote(shown)}`;
}

/** Text with each backticked `` `talk …` `` command spelled as `program` types it. */
export function spellCommands(text: string, program: string): string {
  return program === 'talk' ? text : text.replace(/`talk (?=[a-z-])/g, `\`${program} `);
}
