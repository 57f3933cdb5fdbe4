import { constants } from 'node:fs';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, UsageError } from '../core/errors.js';
import type { CommandContext, SharedOptions } from './context.js';

export interface InitOptions extends SharedOptions {
  force: boolean;
}

/** The starter `talk init` writes. It validates as is (see test/e2e/validate.test.ts). */
export function starterWorkflow(name: string): string {
  return `# A talk workflow: a portrait and a voice-over in, a talking-avatar MP4 out.
# Check it:  talk validate ${name}.yaml      See the steps:  talk plan ${name}.yaml
# Run it:    talk run ${name}.yaml
# Editor completion: \`talk schema > workflow.schema.json\`, then put this line first:
#   # yaml-language-server: $schema=workflow.schema.json
version: 1
name: ${name}

# Where to run: local (offline, on this machine; a good first try), cloud (NemoVideo, costs
# credits: a generation about 100, an edit about 50; new users get 100 free), or the URL of
# a \`talk serve\`. The --backend flag overrides this.
backend: local

# Media to upload, relative to this file (or {url: https://...}). Use a front-facing portrait
# with a clear face for the best lip-sync. Accepted: jpg, png, webp, gif, mp4, mov, mp3, wav,
# m4a, aac and more; at most 200 MB each.
inputs:
  portrait: assets/portrait.jpg
  voice: assets/voice.mp3

# What to ask the NemoVideo agent, in order. Each line is one turn. Expressions such as
# \${{ vars.x }}, \${{ env.X }} or \${{ inputs.portrait.stem }} are filled in first.
instructions:
  - Make this photo talk using my voiceover and loop the animation infinitely

# The render. Everything here is optional; these are the defaults except aspect.
export:
  format: mp4              # the only format rendered today
  quality: high            # high | medium | low
  resolution: 1080p        # 720p | 1080p
  aspect: "9:16"           # 16:9 | 9:16 | 1:1 (default: the portrait's orientation)
  output: out/\${{ workflow.name }}.mp4

# More: several portraits at once (foreach), a step graph (steps), budgets, watch folders.
# See the examples folder of talk, and \`talk schema\` for every key.
`;
}

/** The folder talk is installed in (holds package.json and examples/), found from this module. */
async function packageRoot(): Promise<string | undefined> {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      // Found by its `talk` command, not its registry name (which is not `talk`).
      const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { bin?: unknown };
      if (typeof pkg.bin === 'object' && pkg.bin !== null && 'talk' in pkg.bin) return dir;
    } catch {
      // Not here (dist/ has a package.json without a name); keep walking up.
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * `talk init [file]`: write the commented starter. When its sample media are missing beside
 * it, copy talk's own example portrait and voice-over there, so the starter validates and
 * runs offline right away.
 */
export async function initCommand(args: string[], options: InitOptions, ctx: CommandContext): Promise<number> {
  const target = path.resolve(ctx.cwd, args[0] ?? 'workflow.yaml');
  if (!/\.ya?ml$/i.test(target)) {
    throw new UsageError(`talk init writes a YAML file; "${args[0] ?? ''}" does not end in .yaml or .yml`, { hint: 'e.g. talk init my-avatar.yaml' });
  }
  const name = path.basename(target).replace(/\.ya?ml$/i, '').replace(/[/\\]/g, '-') || 'workflow';
  await mkdir(path.dirname(target), { recursive: true });
  try {
    await writeFile(target, starterWorkflow(name), { flag: options.force ? 'w' : 'wx', signal: ctx.signal });
  } catch (error) {
    if (typeof error === 'object' && error !== null && 'code' in error && error.code === 'EEXIST') {
      throw new UsageError(`${path.relative(ctx.cwd, target) || target} already exists`, { hint: 'pick another name, or pass --force to overwrite it' });
    }
    throw error;
  }
  const shown = (p: string): string => path.relative(ctx.cwd, p) || p;
  ctx.stdout.write(`wrote ${shown(target)}\n`);

  const root = await packageRoot();
  const assets = path.join(path.dirname(target), 'assets');
  for (const asset of ['portrait.jpg', 'voice.mp3']) {
    const destination = path.join(assets, asset);
    if (await exists(destination)) continue;
    const from = root === undefined ? undefined : path.join(root, 'examples', 'assets', asset);
    if (from === undefined || !(await exists(from))) {
      ctx.stdout.write(`put a file at ${shown(destination)} (talk's sample media were not found)\n`);
      continue;
    }
    await mkdir(assets, { recursive: true });
    await copyFile(from, destination, constants.COPYFILE_EXCL);
    ctx.stdout.write(`wrote ${shown(destination)} (sample media; replace it with your own)\n`);
  }
  const talk = ctx.program ?? 'talk';
  ctx.stdout.write(`next: ${talk} validate ${shown(target)} && ${talk} run ${shown(target)}\n`);
  return ExitCode.ok;
}
