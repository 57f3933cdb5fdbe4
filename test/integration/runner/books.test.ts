/**
 * The run's books survive a crash at any moment: the credits a turn booked and the run's total
 * are one journal record, so a state replayed from any prefix of the journal (a kill after any
 * fsync) never holds a total its done turns do not explain — the resume would count that turn
 * a second time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cpSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readRunState, runDirFor, stateDirFor, type RunState } from '../../../src/state/index.js';
import { batchForm, createRig, type Rig } from './rig.js';

let rig: Rig | undefined;
let scratch: string | undefined;

afterEach(async () => {
  await rig?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  rig = undefined;
  scratch = undefined;
});

function bookedByTurns(state: RunState): number {
  let sum = 0;
  for (const job of Object.values(state.jobs)) {
    for (const step of Object.values(job.steps)) {
      if (step.kind === 'instruction' && step.status === 'done') sum += step.turn?.creditsUsed ?? 0;
    }
  }
  return sum;
}

describe("the run's books", () => {
  it('agree with the done turns after a crash at any journal record of a 3-item batch', async () => {
    rig = await createRig(batchForm('books', 3), {}, 3);
    scratch = await mkdtemp(path.join(os.tmpdir(), 'talk-books-'));
    const runDir = runDirFor(stateDirFor(rig.workflow, undefined, rig.dir), rig.workflow, rig.backend.url);
    const copy = path.join(scratch, 'at-end');
    // The store compacts its journal away on close: keep the run dir as it stands when the run ends.
    const { outcome } = await rig.run({ onEvent: (e) => {
      if (e.type === 'run:done') cpSync(runDir, copy, { recursive: true });
    } });
    expect(outcome.status).toBe('success');

    const journal = readdirSync(copy).find((name) => /^journal-\d+\.ndjson$/.test(name));
    expect(journal, 'the run wrote a journal').toBeDefined();
    const lines = (await readFile(path.join(copy, journal!), 'utf8')).split('\n').filter((line) => line !== '');
    expect(lines.filter((line) => line.includes('"creditsUsed"')).length).toBeGreaterThanOrEqual(3);

    const crashed = path.join(scratch, 'crashed');
    cpSync(copy, crashed, { recursive: true });
    const totals = new Set<number>();
    for (let kept = 0; kept <= lines.length; kept += 1) {
      await writeFile(path.join(crashed, journal!), lines.slice(0, kept).map((line) => `${line}\n`).join(''));
      const state = (await readRunState(crashed))!.state;
      expect(state.creditsUsed, `after journal record ${kept} of ${lines.length}`).toBe(bookedByTurns(state));
      totals.add(state.creditsUsed);
    }
    // Every total from none to the whole batch was passed through on the way.
    expect([...totals].sort((a, b) => a - b)).toEqual([0, 100, 200, 300]);
    expect(rig.backend.stats().creditsSpent).toBe(300);
  }, 60_000);
});
