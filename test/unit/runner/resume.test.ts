import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { asJobId, asStepId } from '../../../src/core/ids.js';
import type { PlanJob, PlanStep } from '../../../src/plan/types.js';
import type { JobState, StepState } from '../../../src/state/types.js';
import { cachedHasher, dependenciesOf, fingerprintJob, hashFile } from '../../../src/runner/fingerprint.js';
import { decideJob, describeDecision } from '../../../src/runner/resume.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'talk-resume-'));
  await writeFile(path.join(dir, 'p.jpg'), 'portrait-bytes');
  await writeFile(path.join(dir, 'v.mp3'), 'voice-bytes');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base = { timeoutMs: 60_000, retries: 2 };
function job(opts: { texts?: string[]; aspect?: '1:1' | '16:9'; portrait?: string } = {}): PlanJob {
  const steps: PlanStep[] = [
    { ...base, id: asStepId('up'), kind: 'upload', needs: [], inputs: [{ name: 'portrait', path: opts.portrait ?? path.join(dir, 'p.jpg') }, { name: 'voice', path: path.join(dir, 'v.mp3') }] },
  ];
  (opts.texts ?? ['Make this photo talk']).forEach((text, i) => {
    steps.push({ ...base, id: asStepId(`i${i + 1}`), kind: 'instruction', needs: [asStepId(i === 0 ? 'up' : `i${i}`)], text, turnClass: 'generation', estimatedCredits: 100 });
  });
  steps.push({ ...base, id: asStepId('export'), kind: 'export', needs: [], format: 'mp4', quality: 'low', resolution: '720p', ...(opts.aspect ? { aspect: opts.aspect } : {}), output: path.join(dir, 'out.mp4') });
  return { id: asJobId('main'), steps };
}

const fp = (j: PlanJob, backendId = 'local') => fingerprintJob(j, { backendId, hasher: cachedHasher(hashFile) });

/** A recorded job where every step of `j` finished with the given fingerprints. */
async function recordedDone(j: PlanJob, patch: Record<string, Partial<StepState>> = {}): Promise<JobState> {
  const fps = await fp(j);
  const steps: Record<string, StepState> = {};
  for (const s of j.steps) {
    const f = fps.get(s.id)!;
    steps[s.id] = { kind: s.kind, status: 'done', attempts: 1, fingerprint: f.fingerprint, fingerprintFields: f.fields, ...(s.kind === 'export' ? { render: { id: 'r1', phase: 'completed' }, output: { path: 'x', bytes: 1, sha256: 'y' } } : {}), ...patch[s.id] };
  }
  return { status: 'done', sessionId: '123', steps };
}

const actions = (d: ReturnType<typeof decideJob>): Record<string, string> => Object.fromEntries([...d.steps].map(([k, v]) => [k, v.action]));

describe('dependencies', () => {
  it('orders a session: instructions after earlier uploads and instructions, exports after instructions', () => {
    const deps = dependenciesOf(job({ texts: ['a', 'b'] }));
    expect(deps.get('i2')?.sort()).toEqual(['i1', 'up']);
    expect(deps.get('export')?.sort()).toEqual(['i1', 'i2']);
    expect(deps.get('up')).toEqual([]);
  });
});

describe('resume decisions', () => {
  it('runs everything when nothing is recorded', async () => {
    const j = job();
    const d = decideJob(j, undefined, await fp(j), () => false);
    expect(actions(d)).toEqual({ up: 'run', i1: 'run', export: 'run' });
    expect(d.newSession).toBe(false);
  });

  it('skips done steps with the same fingerprint and an intact output; downloads when the file is gone', async () => {
    const j = job();
    const rec = await recordedDone(j);
    expect(actions(decideJob(j, rec, await fp(j), () => true))).toEqual({ up: 'skip', i1: 'skip', export: 'skip' });
    expect(actions(decideJob(j, rec, await fp(j), () => false))).toEqual({ up: 'skip', i1: 'skip', export: 'download' });
  });

  it('re-attaches a submitted (or submitting) render and checks a sent turn instead of re-sending', async () => {
    const j = job();
    for (const phase of ['submitted', 'submitting'] as const) {
      const rec = await recordedDone(j, { i1: { status: 'running', turn: { draftRevision: 'h', baseline: {}, sentAt: 't' } }, export: { status: 'running', output: undefined, render: { id: 'r1', phase } } });
      expect(actions(decideJob(j, rec, await fp(j), () => false))).toEqual({ up: 'skip', i1: 'check', export: 'reattach' });
    }
    const failedTurn = await recordedDone(j, { i1: { status: 'failed', turn: { draftRevision: 'h', baseline: {}, sentAt: 't' } } });
    expect(decideJob(j, failedTurn, await fp(j), () => true).steps.get('i1')?.action).toBe('check');
  });

  it('export options changed: same session, only the export runs, and the changed field is named', async () => {
    const before = job();
    const after = job({ aspect: '1:1' });
    const d = decideJob(after, await recordedDone(before), await fp(after), () => true);
    expect(d.newSession).toBe(false);
    expect(actions(d)).toEqual({ up: 'skip', i1: 'skip', export: 'run' });
    expect(d.steps.get('export')?.changed).toEqual(['definition']);
    expect(describeDecision(d.steps.get('export')!, false)).toBe('run (changed: definition)');
  });

  it('an appended instruction keeps the session: only it and the export run', async () => {
    const before = job({ texts: ['a'] });
    const after = job({ texts: ['a', 'b'] });
    const d = decideJob(after, await recordedDone(before), await fp(after), () => true);
    expect(d.newSession).toBe(false);
    expect(actions(d)).toEqual({ up: 'skip', i1: 'skip', i2: 'run', export: 'run' });
    expect(d.steps.get('export')?.changed).toEqual(['upstream']);
  });

  it('a changed instruction, a changed input file or a removed instruction starts a new session', async () => {
    const before = job({ texts: ['a', 'b'] });
    const rec = await recordedDone(before);
    const changedText = decideJob(job({ texts: ['A', 'b'] }), rec, await fp(job({ texts: ['A', 'b'] })), () => true);
    expect(changedText.newSession).toBe(true);
    expect(changedText.newSessionReason).toMatch(/i1 changed \(definition\)/);
    expect(Object.values(actions(changedText)).every((a) => a === 'run')).toBe(true);

    await writeFile(path.join(dir, 'p2.jpg'), 'other portrait');
    const newFile = job({ texts: ['a', 'b'], portrait: path.join(dir, 'p2.jpg') });
    const changedInput = decideJob(newFile, rec, await fp(newFile), () => true);
    expect(changedInput.newSessionReason).toMatch(/up changed \(inputs\)/);

    const removed = job({ texts: ['a'] });
    expect(decideJob(removed, rec, await fp(removed), () => true).newSessionReason).toMatch(/i2 was removed/);
  });

  it('another backend means another session', async () => {
    const j = job();
    const d = decideJob(j, await recordedDone(j), await fp(j, 'https://elsewhere.example'), () => true);
    expect(d.newSession).toBe(true);
    expect(d.newSessionReason).toMatch(/backend/);
  });
});

describe('hashing', () => {
  it('hashes a shared file once per run', async () => {
    let reads = 0;
    const hasher = cachedHasher(async (f) => {
      reads += 1;
      return hashFile(f);
    });
    const [a, b] = await Promise.all([hasher(path.join(dir, 'v.mp3')), hasher(path.join(dir, 'v.mp3'))]);
    expect(a).toBe(b);
    expect(reads).toBe(1);
  });

  it('hashes empty, small and multi-read files to their SHA-256; a stopped run stops the read', async () => {
    for (const size of [0, 1, 7_521, 1024 * 1024, 1024 * 1024 + 1, 2_500_000]) {
      const bytes = randomBytes(size);
      const file = path.join(dir, `h${size}.bin`);
      await writeFile(file, bytes);
      expect(await hashFile(file)).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    await expect(hashFile(path.join(dir, 'h2500000.bin'), { signal: AbortSignal.abort() })).rejects.toThrow();
    await expect(hashFile(path.join(dir, 'missing.bin'))).rejects.toThrow(/ENOENT/);
  });
});
