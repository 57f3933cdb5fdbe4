/**
 * Compact facts about a session's state, and what changed between two of them. Used to
 * describe a silent turn (CONTRACT §3.8) and to judge a lost one (§2.4).
 */
import { createHash } from 'node:crypto';
import type { SessionStateData } from '../contract/bodies.js';
import type { StateSnapshot } from './types.js';
import { isRecord } from '../core/guards.js';

/** JSON with object keys sorted, so equal drafts hash equally whatever the key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** Snapshot of state as the backend returned it; tolerant of every "no draft" form. */
export function snapshotState(data: SessionStateData | null | undefined): StateSnapshot {
  const state: Record<string, unknown> = isRecord(data) && isRecord(data.state) ? data.state : {};
  const draft = isRecord(state.draft) ? state.draft : undefined;
  const tracks = draft && Array.isArray(draft.t) ? (draft.t as unknown[]) : [];
  const segmentsPerTrack = tracks.map((t) => (isRecord(t) && Array.isArray(t.sg) ? t.sg.length : 0));
  const durationMs = draft && typeof draft.d === 'number' ? draft.d : 0;
  const count = (v: unknown): number => (Array.isArray(v) ? v.length : 0);
  return {
    tracks: tracks.length,
    segmentsPerTrack,
    durationMs,
    videoInfos: count(state.video_infos),
    generatedMedia: count(state.generated_media),
    draftHash: createHash('sha256').update(canonicalJson(draft ?? null)).digest('hex').slice(0, 16),
  };
}

/** True when anything the snapshot tracks differs. */
export function stateChanged(before: StateSnapshot, after: StateSnapshot): boolean {
  return before.draftHash !== after.draftHash || before.videoInfos !== after.videoInfos || before.generatedMedia !== after.generatedMedia;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(1))} s`;

/** What changed, in words ("added 1 track; duration 10 s → 12 s"), or "nothing changed". */
export function describeChange(before: StateSnapshot, after: StateSnapshot): string {
  const parts: string[] = [];
  if (after.tracks > before.tracks) parts.push(`added ${plural(after.tracks - before.tracks, 'track')}`);
  if (after.tracks < before.tracks) parts.push(`removed ${plural(before.tracks - after.tracks, 'track')}`);
  const shared = Math.min(before.tracks, after.tracks);
  for (let i = 0; i < shared; i += 1) {
    const delta = (after.segmentsPerTrack[i] ?? 0) - (before.segmentsPerTrack[i] ?? 0);
    if (delta > 0) parts.push(`track ${i + 1}: added ${plural(delta, 'segment')}`);
    if (delta < 0) parts.push(`track ${i + 1}: removed ${plural(-delta, 'segment')}`);
  }
  if (after.durationMs !== before.durationMs) parts.push(`duration ${seconds(before.durationMs)} → ${seconds(after.durationMs)}`);
  if (after.videoInfos !== before.videoInfos) parts.push(`media ${before.videoInfos} → ${after.videoInfos}`);
  if (after.generatedMedia !== before.generatedMedia) parts.push(`generated media ${before.generatedMedia} → ${after.generatedMedia}`);
  if (parts.length === 0 && before.draftHash !== after.draftHash) parts.push('the timeline was edited');
  return parts.length === 0 ? 'nothing changed' : parts.join('; ');
}

