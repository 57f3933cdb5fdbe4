import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  StateLockedError,
  StateWriteError,
  acquireLock,
  adoptLegacyRunState,
  listRunDirs,
  workflowRunsDir,
  openStateStore,
  readRunState,
  runDirFor,
  stateDirFor,
  type LockEnvironment,
  type StepState,
} from '../../../src/state/index.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'talk-state-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const step = (status: StepState['status'], extra: Partial<StepState> = {}): StepState => ({ kind: 'upload', status, attempts: 1, ...extra });

function envWith(alive: Set<number>, pid: number, host = 'here'): LockEnvironment {
  return { pid, host, isAlive: (p) => alive.has(p), now: () => new Date('2026-01-01T00:00:00Z') };
}

describe('state store', () => {
  it('keeps every acknowledged change across a reopen, without a close (as after kill -9)', async () => {
    const dir = path.join(root, 'run');
    const store = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: envWith(new Set(), 1) });
    await store.updateJob('a', { sessionId: '123', status: 'running' });
    await store.putStep('a', 'up', step('done', { uploads: [{ name: 'portrait', file: { filename: 'p.jpg' } }] }));
    await Promise.all([store.putStep('a', 'x', step('running')), store.putStep('b', 'y', step('failed')), store.updateRun({ creditsUsed: 100 })]);
    // No close: the process "dies" here. The lock stays behind, which is the stale-lock case.
    const loaded = await readRunState(dir);
    expect(loaded?.state.jobs['a']?.sessionId).toBe('123');
    expect(loaded?.state.jobs['a']?.steps['up']?.uploads?.[0]?.name).toBe('portrait');
    expect(loaded?.state.jobs['a']?.steps['x']?.status).toBe('running');
    expect(loaded?.state.jobs['b']?.steps['y']?.status).toBe('failed');
    expect(loaded?.state.creditsUsed).toBe(100);
  });

  it('ignores a torn last journal line but rejects damage earlier in the file', async () => {
    const dir = path.join(root, 'run');
    const store = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: envWith(new Set(), 1) });
    await store.putStep('a', 's', step('done'));
    const journal = (await readdir(dir)).find((f) => f.startsWith('journal-'))!;
    await appendFile(path.join(dir, journal), '{"op":"step","job":"a","step":"t","sta');
    expect((await readRunState(dir))?.state.jobs['a']?.steps['s']?.status).toBe('done');
    expect((await readRunState(dir))?.state.jobs['a']?.steps['t']).toBeUndefined();
    await appendFile(path.join(dir, journal), '\n{"op":"reset-job","job":"a"}\n');
    // Located: the file and the line, not a silently shorter history.
    const lines = (await readFile(path.join(dir, journal), 'utf8')).split('\n');
    const damaged = lines.findIndex((line) => line.endsWith('"sta')) + 1;
    await expect(readRunState(dir)).rejects.toThrow(new RegExp(`cannot be read: .*${journal}:${damaged}: damaged journal line`));
  });

  it('writes O(change) per change and compacts the journal by rename', async () => {
    const dir = path.join(root, 'run');
    const store = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', compactMinBytes: 4096, lockEnvironment: envWith(new Set(), 1) });
    const base = store.stats().bytesWritten;
    for (let i = 0; i < 50; i += 1) await store.putStep(`job-${i}`, 'up', step('done'));
    const perChange = (store.stats().bytesWritten - base) / 50;
    // One step line is ~130 bytes; a full rewrite would grow with the number of jobs.
    expect(perChange).toBeLessThan(400);
    for (let i = 0; i < 200; i += 1) await store.putStep(`job-${i % 50}`, 'up', step('running', { attempts: i }));
    expect(store.stats().compactions).toBeGreaterThan(1);
    const files = await readdir(dir);
    expect(files.filter((f) => f.startsWith('journal-'))).toHaveLength(1);
    expect(files.some((f) => f.endsWith('.tmp'))).toBe(false);
    const loaded = await readRunState(dir);
    expect(loaded?.state.jobs['job-49']?.steps['up']?.attempts).toBe(199);
    await store.close();
    const snapshot = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8')) as { state: { jobs: Record<string, unknown> } };
    expect(Object.keys(snapshot.state.jobs)).toHaveLength(50);
  });

  it('writes a snapshot bigger than one write piece whole, and counts its bytes as written', async () => {
    const dir = path.join(root, 'run');
    const store = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w "quoted"', lockEnvironment: envWith(new Set(), 1) });
    // About 1 MB of state: several of the snapshot's 256 KiB pieces.
    const detail = 'x'.repeat(400);
    await Promise.all(Array.from({ length: 2000 }, (_, i) => store.putStep(`job-${i}`, 'up', step('done', { error: { code: 'c', message: `${detail} ${i} \u2028 "` } }))));
    await store.updateJob('job-7', { sessionId: 'sess-7' });
    const before = store.stats().bytesWritten;
    const expected = structuredClone(store.state);
    await store.close();
    const text = await readFile(path.join(dir, 'state.json'), 'utf8');
    expect(Buffer.byteLength(text)).toBeGreaterThan(800_000);
    expect(store.stats().bytesWritten - before).toBe(Buffer.byteLength(text));
    const loaded = await readRunState(dir);
    expect(loaded?.state).toEqual(expected);
    expect(loaded?.generation).toBe((JSON.parse(text) as { generation: number }).generation);
  });

  it('reads back the same state when changes arrive while a snapshot is being written', async () => {
    const dir = path.join(root, 'run');
    const store = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', compactMinBytes: 64 * 1024, compactFactor: 1, lockEnvironment: envWith(new Set(), 1) });
    const detail = 'y'.repeat(300);
    const writes: Promise<void>[] = [];
    // Changes made on every turn of the event loop, never waiting for the disk: some land
    // between the pieces of a snapshot being written. How many changes one snapshot takes
    // depends on how the disk keeps up, so the loop runs until three snapshots have been
    // written while changes kept coming (ordered by the store's own count, not by a guess).
    for (let i = 0; i < 3000 || (store.stats().compactions <= 2 && i < 60_000); i += 1) {
      const job = `job-${i % 700}`;
      if (i % 97 === 0) writes.push(store.resetJob(job));
      else if (i % 13 === 0) writes.push(store.updateJob(job, { sessionId: `s-${i}` }));
      else writes.push(store.putStep(job, `step-${i % 3}`, step('running', { attempts: i, error: { code: 'c', message: detail } })));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await Promise.all(writes);
    expect(store.stats().compactions).toBeGreaterThan(2);
    const expected = structuredClone(store.state);
    expect((await readRunState(dir))?.state).toEqual(expected);
    await store.close();
    expect((await readRunState(dir))?.state).toEqual(expected);
  });

  it('writes an empty run as a snapshot that reads back', async () => {
    const dir = path.join(root, 'run');
    const store = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: envWith(new Set(), 1) });
    const expected = structuredClone(store.state);
    await store.close();
    expect((await readRunState(dir))?.state).toEqual(expected);
  });

  it('shares one fsync among changes that arrive together', async () => {
    const dir = path.join(root, 'run');
    const store = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: envWith(new Set(), 1) });
    const before = store.stats().flushes;
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.putStep('j', `s${i}`, step('done'))));
    expect(store.stats().flushes - before).toBeLessThan(100);
    expect(Object.keys((await readRunState(dir))!.state.jobs['j']!.steps)).toHaveLength(100);
    await store.close();
  });

  it('reset-job forgets a session and its steps; --fresh forgets everything', async () => {
    const dir = path.join(root, 'run');
    const env = envWith(new Set(), 1);
    const store = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: env });
    await store.updateJob('a', { sessionId: '1' });
    await store.putStep('a', 's', step('done'));
    await store.resetJob('a');
    await store.putStep('a', 't', step('pending'));
    await store.close();
    const again = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: env });
    expect(again.hadPrevious).toBe(true);
    expect(again.job('a')?.sessionId).toBeUndefined();
    expect(Object.keys(again.job('a')!.steps)).toEqual(['t']);
    await again.close();
    const fresh = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', fresh: true, lockEnvironment: env });
    expect(fresh.hadPrevious).toBe(false);
    expect(fresh.state.jobs).toEqual({});
    await fresh.close();
  });

  it('stops every later change after a failed write, loudly', async () => {
    const dir = path.join(root, 'run');
    const store = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: envWith(new Set(), 1) });
    // Replace the run dir by a file: the next append cannot happen.
    await rm(dir, { recursive: true });
    await writeFile(dir, 'not a folder');
    await expect(store.putStep('a', 's', step('running'))).rejects.toBeInstanceOf(StateWriteError);
    await expect(store.putStep('a', 's', step('done'))).rejects.toBeInstanceOf(StateWriteError);
    await expect(store.flush()).rejects.toBeInstanceOf(StateWriteError);
  });
});

describe('run lock', () => {
  it('refuses a second runner while the first is alive, with who holds it', async () => {
    const dir = path.join(root, 'run');
    const alive = new Set([1]);
    const first = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: envWith(alive, 1) });
    const second = openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: envWith(alive, 2) });
    await expect(second).rejects.toBeInstanceOf(StateLockedError);
    await expect(second).rejects.toThrow(/pid 1 on here/);
    await first.close();
    const third = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: envWith(alive, 3) });
    expect(third.tookOverFrom).toBeUndefined();
    await third.close();
  });

  it('takes over a lock whose process is gone and says from whom', async () => {
    const dir = path.join(root, 'run');
    const first = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: envWith(new Set(), 41) });
    await first.putStep('a', 's', step('running'));
    // pid 41 "died" without closing: its lock is still on disk.
    const second = await openStateStore({ dir, workflowPath: '/w.yaml', name: 'w', lockEnvironment: envWith(new Set([42]), 42) });
    expect(second.tookOverFrom?.pid).toBe(41);
    expect(second.step('a', 's')?.status).toBe('running');
    await second.close();
  });

  it('does not take over a lock from another host', async () => {
    const file = path.join(root, 'lock');
    const held = await acquireLock(file, envWith(new Set(), 7, 'elsewhere'));
    await expect(acquireLock(file, envWith(new Set(), 8, 'here'))).rejects.toMatchObject({ hint: expect.stringMatching(/delete .*lock/) as unknown });
    await held.release();
  });

  it('uses this process for real liveness', async () => {
    const file = path.join(root, 'lock');
    const held = await acquireLock(file);
    await expect(acquireLock(file)).rejects.toBeInstanceOf(StateLockedError);
    await held.release();
  });
});

describe('locations', () => {
  it('puts .talk beside the workflow unless overridden, one run dir per workflow file and backend', () => {
    expect(stateDirFor('/a/b/w.yaml', undefined, '/cwd')).toBe(path.join('/a/b', '.talk'));
    expect(stateDirFor('/a/b/w.yaml', 'st', '/cwd')).toBe(path.join('/cwd', 'st'));
    expect(runDirFor('/s', '/a/b/w.yaml', 'local')).toBe(path.join('/s', 'runs', 'w.yaml', 'local'));
    expect(runDirFor('/s', '/a/b/w.yaml', 'http://127.0.0.1:8787')).toBe(path.join('/s', 'runs', 'w.yaml', '127.0.0.1_8787'));
    expect(runDirFor('/s', '/a/b/w.yaml', 'https://api.example.com')).toBe(path.join('/s', 'runs', 'w.yaml', 'api.example.com'));
  });

  it('a state written before states were kept per backend is moved to the run dir of the backend it recorded', async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'talk-legacy-'));
    try {
      const workflow = path.join(stateDir, 'w.yaml');
      const legacy = workflowRunsDir(stateDir, workflow);
      const store = await openStateStore({ dir: legacy, workflowPath: workflow, name: 'w' });
      await store.updateRun({ backend: 'local', creditsUsed: 100 });
      await store.close();
      await adoptLegacyRunState(stateDir, workflow, async (dir) => (await readRunState(dir))?.state.backend);
      expect((await readRunState(runDirFor(stateDir, workflow, 'local')))?.state.creditsUsed).toBe(100);
      expect(await readRunState(legacy)).toBeUndefined();
      expect(await listRunDirs(stateDir)).toEqual([runDirFor(stateDir, workflow, 'local')]);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
