// How hints spell the program: `talk` only when the `talk` on PATH is this very file, npx's
// form under npx or an npm script, else `node <path>`; `TALK_PROGRAM` pins it. Real files and
// symlinks in a temp folder stand in for an install.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invocation, spellCommands } from '../../../src/cli/invocation.js';

let root: string;
let script: string;
let linked: string;
let other: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'talk-invocation-'));
  script = path.join(root, 'pkg', 'bin', 'talk.js');
  await mkdir(path.dirname(script), { recursive: true });
  await writeFile(script, '');
  // A global bin folder whose `talk` links to this install, and one whose `talk` is another program.
  linked = path.join(root, 'global-bin');
  await mkdir(linked);
  await symlink(script, path.join(linked, 'talk'));
  other = path.join(root, 'other-bin');
  await mkdir(other);
  await writeFile(path.join(other, 'talk'), '');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('invocation', () => {
  it('is `talk` when the talk on PATH is this file (npm link, a global install)', () => {
    expect(invocation({ script: path.join(linked, 'talk'), env: { PATH: [other, linked].join(path.delimiter) }, cwd: root })).toBe('talk');
  });

  it('is `node <path>` when talk on PATH is another program or there is none', () => {
    expect(invocation({ script, env: { PATH: other }, cwd: root })).toBe(`node .${path.sep}${path.join('pkg', 'bin', 'talk.js')}`);
    expect(invocation({ script, env: {}, cwd: path.join(root, 'pkg', 'bin') })).toBe(`node .${path.sep}talk.js`);
    expect(invocation({ script, env: {}, cwd: linked })).toBe(`node ${script}`);
  });

  it('is the local install through npx under npx or an npm script, and TALK_PROGRAM when set', () => {
    expect(invocation({ script, env: { npm_command: 'exec', PATH: linked }, cwd: root })).toBe('npx --no-install talk');
    expect(invocation({ script, env: { npm_command: 'run-script' }, cwd: root })).toBe('npx --no-install talk');
    expect(invocation({ script, env: { TALK_PROGRAM: 'docker run talk', PATH: linked }, cwd: root })).toBe('docker run talk');
  });
});

describe('spellCommands', () => {
  it('rewrites backticked talk commands only', () => {
    const text = 'make this photo talk run-free; run `talk status` or `talk run a.yaml`';
    expect(spellCommands(text, 'node ./bin/talk.js')).toBe('make this photo talk run-free; run `node ./bin/talk.js status` or `node ./bin/talk.js run a.yaml`');
    expect(spellCommands(text, 'talk')).toBe(text);
  });
});
