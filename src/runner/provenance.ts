/**
 * The provenance record `<output>.talk.json` (SPEC §1, `schemas/provenance.schema.json`): where
 * one video came from. Written by the runner last, once a job is done and its output verified,
 * atomically over any earlier record of the same output, so a resumed run keeps one record.
 *
 * It holds paths (relative to the record's folder), hashes, media facts, ids, the instructions
 * and replies, credits, timings and versions; never a token (the backend appears as its
 * identity and a URL stripped of credentials and query).
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeRecordFile } from '../core/provenance-file.js';
import { provenancePath } from '../core/paths.js';
import type { ExportStep, Plan, PlanJob } from '../plan/types.js';
import type { StateStore } from '../state/state-store.js';
import type { FileHasher } from './fingerprint.js';

/** Bumped when the record changes incompatibly. */
export const PROVENANCE_FORMAT_VERSION = 1;

/** What ffprobe says about a media file (all optional: a still has no duration). */
export interface MediaFacts {
  duration?: number;
  width?: number;
  height?: number;
  videoCodec?: string;
  audioCodec?: string;
}

/**
 * What the runner needs to write records, injected by the command (the runner does not find
 * binaries itself): a prober and the versions to record.
 */
export interface ProvenanceDeps {
  /**
   * Media facts of a file whose content hashes to `sha256` (the same bytes have the same facts,
   * so a prober may answer from what it saw before); undefined when it cannot be probed (the
   * record then omits them).
   */
  probe(file: string, sha256: string, signal: AbortSignal): Promise<MediaFacts | undefined>;
  versions: { talk: string; node: string; ffmpeg?: string | undefined };
}

/** How long one step took, in this run or (for a resumed step) in the run that did it. */
export interface StepTiming {
  step: string;
  kind: string;
  startedAt: string;
  durationMs: number;
  /** True when this run skipped the step because an earlier run had done it. */
  resumed?: boolean;
}

/** One provenance record, as written (see the schema for every field's meaning). */
export interface ProvenanceRecord {
  format: 'talk-provenance';
  formatVersion: number;
  createdAt: string;
  workflow: { name: string; path: string; sha256: string };
  job: string;
  item?: Record<string, string>;
  inputs: { name: string; path?: string; url?: string; bytes?: number; sha256?: string; media?: MediaFacts }[];
  instructions: { step: string; text: string; reply?: string; silent?: boolean; tools: string[]; creditsUsed: number; sentAt?: string }[];
  session: { id: string; taskId?: string };
  render: { id: string; ids: string[] };
  backend: { id: string; url: string };
  export: { step: string; format: string; quality: string; resolution: string; aspect?: string };
  video: { path: string; bytes: number; sha256: string } & MediaFacts;
  creditsUsed: number;
  timings: StepTiming[];
  versions: { talk: string; node: string; ffmpeg?: string };
}

/** A URL as identity: no user, password, query or fragment (where tokens could hide). */
export function publicUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '';
  }
}

function relativeTo(dir: string, file: string): string {
  return path.relative(dir, file).split(path.sep).join('/');
}

async function readPrevious(file: string): Promise<Partial<ProvenanceRecord> | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Partial<ProvenanceRecord>;
  } catch {
    return undefined;
  }
}

/**
 * Write the record of every verified output of a done job. `timings` holds the steps this run
 * executed; a step it skipped as resumed keeps the timing of the earlier record, marked so.
 * Returns the files written.
 */
export async function writeProvenance(
  input: {
    plan: Plan;
    job: PlanJob;
    store: StateStore;
    timings: ReadonlyMap<string, StepTiming>;
    backend: { id: string; url: string };
    hasher: FileHasher;
    signal: AbortSignal;
  },
  deps: ProvenanceDeps,
): Promise<string[]> {
  const { plan, job, store, signal } = input;
  const state = store.job(job.id);
  if (!state?.sessionId) return [];
  const workflowSha = await input.hasher(plan.workflowPath, { signal });
  const written: string[] = [];
  const probe = (file: string, sha256: string): Promise<MediaFacts | undefined> => deps.probe(file, sha256, signal).catch(() => undefined);
  for (const step of job.steps) {
    if (step.kind !== 'export') continue;
    const rec = state.steps[step.id];
    if (rec?.status !== 'done' || !rec.output || !rec.render) continue;
    const file = provenancePath(rec.output.path);
    const dir = path.dirname(file);
    const previous = await readPrevious(file);
    const earlier = new Map((previous?.timings ?? []).map((t) => [t.step, t]));
    const inputs: ProvenanceRecord['inputs'] = [];
    for (const s of job.steps) {
      if (s.kind !== 'upload') continue;
      for (const i of s.inputs) {
        if (i.path === undefined) {
          inputs.push({ name: i.name, ...(i.url ? { url: publicUrl(i.url) } : {}) });
          continue;
        }
        const [st, sha] = await Promise.all([stat(i.path), input.hasher(i.path, { signal })]);
        const media = await probe(i.path, sha);
        inputs.push({ name: i.name, path: relativeTo(dir, i.path), bytes: st.size, sha256: sha, ...(media ? { media } : {}) });
      }
    }
    const instructions: ProvenanceRecord['instructions'] = [];
    for (const s of job.steps) {
      if (s.kind !== 'instruction') continue;
      const turn = state.steps[s.id]?.turn;
      instructions.push({
        step: s.id,
        text: s.text,
        ...(turn?.reply !== undefined ? { reply: turn.reply } : {}),
        ...(turn?.silent !== undefined ? { silent: turn.silent } : {}),
        tools: turn?.tools ?? [],
        creditsUsed: turn?.creditsUsed ?? 0,
        ...(turn?.sentAt ? { sentAt: turn.sentAt } : {}),
      });
    }
    const timings: StepTiming[] = [];
    for (const s of job.steps) {
      const now = input.timings.get(s.id);
      const before = earlier.get(s.id);
      if (now) timings.push(now);
      else if (before) timings.push({ ...before, resumed: true });
    }
    const media = await probe(rec.output.path, rec.output.sha256);
    const ex: ExportStep = step;
    const record: ProvenanceRecord = {
      format: 'talk-provenance',
      formatVersion: PROVENANCE_FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      workflow: { name: plan.name, path: relativeTo(dir, plan.workflowPath), sha256: workflowSha },
      job: job.id,
      ...(job.item ? { item: job.item } : {}),
      inputs,
      instructions,
      session: { id: state.sessionId, ...(state.taskId ? { taskId: state.taskId } : {}) },
      render: { id: rec.render.id, ids: rec.renderIds ?? [rec.render.id] },
      backend: { id: input.backend.id === 'local' ? 'local' : publicUrl(input.backend.id), url: publicUrl(input.backend.url) },
      export: { step: ex.id, format: ex.format, quality: ex.quality, resolution: ex.resolution, ...(ex.aspect ? { aspect: ex.aspect } : {}) },
      video: { path: relativeTo(dir, rec.output.path), bytes: rec.output.bytes, sha256: rec.output.sha256, ...(media ?? {}) },
      creditsUsed: instructions.reduce((sum, i) => sum + i.creditsUsed, 0),
      timings,
      versions: { talk: deps.versions.talk, node: deps.versions.node, ...(deps.versions.ffmpeg ? { ffmpeg: deps.versions.ffmpeg } : {}) },
    };
    await writeRecordFile(file, record);
    written.push(file);
  }
  return written;
}
