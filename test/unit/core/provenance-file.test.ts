// The one writer of `<output>.talk.json`: a record is checked against the published schema
// before it is written, so a record that does not match (a field the schema does not name, a
// token among them; a missing provenance field) is refused and nothing reaches the disk.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recordProblems, writeRecordFile } from '../../../src/core/provenance-file.js';
import { recordSchema } from '../../helpers/records.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

const WATCH = { status: 'failed', bundle: 'anna', updatedAt: '2026-12-02T10:00:00.000Z', error: { code: 'credits', message: 'out of credits' } };

describe('writeRecordFile', () => {
  it('writes a record that matches the schema', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'talk-record-'));
    const file = path.join(dir, 'anna.talk.json');
    await writeRecordFile(file, WATCH);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(WATCH);
  });

  it.each([
    ['a token beside the watch fields', { ...WATCH, token: 'nmv_secret' }, /must NOT have additional properties/],
    ['a sidecar without its bundle', { status: 'incomplete', updatedAt: WATCH.updatedAt }, /must have required property 'bundle'/],
    ['a record (it has a format) without its provenance fields', { ...WATCH, status: 'done', format: 'talk-provenance' }, /must have required property 'workflow'/],
    ['a waiting-credits sidecar with a negative need', { status: 'waiting-credits', bundle: 'b', needs: -1, available: 0, updatedAt: WATCH.updatedAt }, /needs must be >= 0/],
  ])('refuses %s, writing nothing', async (_name, record, problem) => {
    dir = await mkdtemp(path.join(tmpdir(), 'talk-record-'));
    await expect(writeRecordFile(path.join(dir, 'x.talk.json'), record)).rejects.toThrow(problem);
    expect(await readdir(dir)).toEqual([]);
  });

  it('agrees with the schema compiled afresh, on every sidecar kind', async () => {
    const validate = await recordSchema();
    const samples = [
      WATCH,
      { status: 'incomplete', bundle: 'b', missing: ['voice'], problems: [], sources: ['b.jpg'], updatedAt: WATCH.updatedAt },
      { status: 'waiting-credits', bundle: 'b', needs: 100, available: 0, updatedAt: WATCH.updatedAt },
      { status: 'done', bundle: 'b', output: 'b.mp4', updatedAt: WATCH.updatedAt },
      { ...WATCH, password: 'x' },
      { status: 'done', updatedAt: WATCH.updatedAt },
    ];
    for (const sample of samples) expect(recordProblems(sample).length === 0, JSON.stringify(sample)).toBe(validate(sample));
  });
});
