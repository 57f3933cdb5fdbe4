/**
 * The compact draft (CONTRACT §7). The client treats it as opaque except for these keys; the
 * local backend builds and renders it. Segment keys beyond `id`/`st`/`d` are the local
 * backend's own (the contract marks them invented).
 */

/** Track types: 0 video, 1 audio/BGM, 7 text/title. */
export const TrackType = { video: 0, audio: 1, text: 7 } as const;
export type TrackTypeValue = (typeof TrackType)[keyof typeof TrackType];

export interface DraftSegment {
  id: string;
  /** Start within the timeline, ms. */
  st: number;
  /** Duration, ms. */
  d: number;
  name?: string;
  /** Media URL for video/audio segments. */
  src?: string;
  /** Text for text segments. */
  text?: string;
  /** Volume 0..1 for audio segments. */
  vol?: number;
  /** Repeat the source to fill `d` (the "loop infinitely" edit). */
  loop?: boolean;
  /** Role of an audio segment: the voice-over drives the animation, music is background. */
  role?: 'voice' | 'music';
  [key: string]: unknown;
}

export interface DraftTrack {
  tt: number;
  sg: DraftSegment[];
  [key: string]: unknown;
}

export interface Draft {
  t?: DraftTrack[];
  /** Total duration, ms. */
  d?: number;
  m?: { title?: string; width?: number; height?: number; ratio?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** Export-ready rule (§2.7): `draft.t` exists and some track has a non-empty `sg`. */
export function isExportReady(draft: unknown): draft is Draft {
  if (typeof draft !== 'object' || draft === null) return false;
  const tracks = (draft as Draft).t;
  return Array.isArray(tracks) && tracks.some((t) => Array.isArray(t?.sg) && t.sg.length > 0);
}
