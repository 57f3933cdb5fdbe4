/**
 * The agent behind `/run_sse`: turns an instruction into draft edits by intent (the shared
 * classifier in `contract/pricing.ts`), and says what it did the way the real agent does —
 * as if a GUI existed ("click Export"). Anything it cannot map, or cannot do yet (no portrait,
 * no voice-over, no video to edit), gets a clarifying reply and costs nothing.
 */
import { classifyInstruction, PRICES, type Aspect, type Intent, type TurnClass } from '../contract/pricing.js';
import { TrackType, type Draft, type DraftSegment, type DraftTrack } from '../contract/draft.js';
import { sizeFor } from './render.js';
import type { SessionRecord, StoredUpload } from './store.js';
import type { FaceLandmarks } from './face.js';
import { unreachable } from '../core/unreachable.js';

/** One tool round trip the stream shows (functionCall → functionResponse). */
export interface ToolStep {
  name: string;
  args: Record<string, unknown>;
  response: Record<string, unknown>;
}

/** What a turn will do, decided before it starts so credits can be checked and frozen. */
export interface TurnPlan {
  turnClass: TurnClass;
  /** Credits charged when the turn succeeds (0 for clarifications). */
  cost: number;
  tools: ToolStep[];
  /** The reply text; for an edit the stream may leave it out (silent edit). */
  reply: string;
  /**
   * Apply the edits to the session (after the agent's "work"). May return a sentence to add to
   * the reply about what it found doing so (no face in the portrait).
   */
  apply: (ctx: ApplyContext) => Promise<string | undefined>;
}

/** What applying a plan may use. */
export interface ApplyContext {
  session: SessionRecord;
  /** Absolute URL of a stored media file (`/media/<id>.<ext>` on this server). */
  mediaUrl: (upload: StoredUpload) => string;
  /** The face in a portrait (undefined: none found); throws when the face finder cannot run. */
  findFace: (upload: StoredUpload) => Promise<FaceLandmarks | undefined>;
  /** Recognise a voice's phonemes ahead of the render, when a recogniser is installed; never rejects but for an abort. */
  warmVoice: (upload: StoredUpload) => Promise<unknown>;
  /** Make a background-music bed of the given length (no music uploaded). */
  makeMusic: (seconds: number) => Promise<StoredUpload>;
  signal: AbortSignal;
}

const fmt = (ms: number): string => `${Number((ms / 1000).toFixed(1))}s`;

function clarification(reply: string): TurnPlan {
  return { turnClass: 'question', cost: PRICES.question, tools: [], reply, apply: () => Promise.resolve(undefined) };
}

function portraitOf(uploads: readonly StoredUpload[]): StoredUpload | undefined {
  return [...uploads].reverse().find((u) => u.kind === 'image') ?? [...uploads].reverse().find((u) => u.kind === 'video' && u.poster);
}

function voiceOf(uploads: readonly StoredUpload[]): StoredUpload | undefined {
  return [...uploads].reverse().find((u) => u.kind === 'audio' && u.role !== 'music' && !u.generated);
}

function musicOf(uploads: readonly StoredUpload[]): StoredUpload | undefined {
  return [...uploads].reverse().find((u) => u.kind === 'audio' && u.role === 'music' && !u.generated);
}

/** Canvas for an aspect at 1080p. */
function canvasFor(aspect: Aspect): { width: number; height: number; ratio: Aspect } {
  return { ...sizeFor(aspect, '1080p'), ratio: aspect };
}

function orientationOf(u: StoredUpload | undefined): Aspect {
  if (!u?.width || !u.height) return '9:16';
  if (Math.abs(u.width - u.height) / Math.max(u.width, u.height) < 0.05) return '1:1';
  return u.width > u.height ? '16:9' : '9:16';
}

function trackOf(draft: Draft, type: number, role?: string): DraftTrack | undefined {
  return (draft.t ?? []).find((t) => t.tt === type && (role === undefined || t.sg.some((s) => s.role === role)));
}

function nextId(draft: Draft, prefix: string): string {
  const used = new Set((draft.t ?? []).flatMap((t) => t.sg.map((s) => s.id)));
  let n = 1;
  while (used.has(`${prefix}${n}`)) n++;
  return `${prefix}${n}`;
}

/** Clip every segment to the draft's duration; drop segments that start after it. */
function clipTo(draft: Draft, durationMs: number): void {
  draft.d = durationMs;
  for (const track of draft.t ?? []) {
    track.sg = track.sg.filter((s) => s.st < durationMs).map((s) => ({ ...s, d: Math.min(s.d, durationMs - s.st) }));
  }
  draft.t = (draft.t ?? []).filter((t) => t.sg.length > 0);
}

/**
 * Plan a turn. `uploads` are the session's media, oldest first. The plan is pure; its
 * `apply` mutates the session when the agent has "worked".
 */
export function planTurn(text: string, session: SessionRecord, uploads: readonly StoredUpload[]): TurnPlan {
  const { intents, turnClass, cost } = classifyInstruction(text);
  if (intents.length === 0) {
    return clarification(
      'I can make your photo talk with your voice-over, loop the animation, add a title or caption, add background music, change the aspect ratio (16:9, 9:16, 1:1) or trim the video. What would you like to do?',
    );
  }
  const hasDraft = (session.draft?.t ?? []).some((t) => t.sg.length > 0);
  const wantsTalk = intents.some((i) => i.kind === 'talk');
  const portrait = portraitOf(uploads);
  const voice = voiceOf(uploads);
  if (wantsTalk && !portrait) return clarification('Please upload a front-facing portrait photo first, then ask me again to make it talk.');
  if (wantsTalk && !voice) return clarification('I need a voice-over to lip-sync to. Upload an audio file (mp3, wav, m4a or aac) and ask me again.');
  const needsTimeline = intents.some((i) => i.kind !== 'talk' && i.kind !== 'aspect');
  if (!wantsTalk && needsTimeline && !hasDraft) {
    return clarification('There is no video to edit yet. Upload a portrait and a voice-over, then ask me to make the photo talk.');
  }

  const tools: ToolStep[] = [];
  const said: string[] = [];
  const edits = intents.filter((i) => i.kind !== 'talk');
  if (wantsTalk && portrait && voice) {
    const durationMs = Math.max(200, Math.round((voice.duration ?? 5) * 1000));
    tools.push({
      name: 'generate_video_talking_avatar',
      args: { image: portrait.originalName, audio: voice.originalName, duration: durationMs / 1000 },
      response: { status: 'success', duration: durationMs / 1000 },
    });
    // Say what this preview does; the cloud's lip-sync is not what it shows.
    said.push(`Your talking avatar is ready: ${fmt(durationMs)} local preview, mouth animated from your voice-over "${voice.originalName}".`);
  }
  const music = edits.some((i) => i.kind === 'music');
  if (music) tools.push({ name: 'generate_music', args: { mood: 'calm', volume: 0.35 }, response: { status: 'success' } });
  const draftEdits = edits.filter((i) => i.kind !== 'music');
  if (draftEdits.length > 0 || music) {
    tools.push({ name: 'edit_multitrack', args: { operations: edits.map((i) => i.kind) }, response: { status: 'success' } });
  }
  for (const intent of edits) said.push(describe(intent));
  said.push(wantsTalk ? 'Preview it in the timeline, then click Export to save your MP4.' : 'Check the preview and click Export when you are happy.');

  const apply = async (ctx: ApplyContext): Promise<string | undefined> => {
    const s = ctx.session;
    let draft: Draft = structuredClone(s.draft ?? {});
    let found: string | undefined;
    if (wantsTalk && portrait && voice) {
      // Looked for now (and cached by content), so the render finds it ready and the reply
      // can say when there is no face to animate.
      // The voice's phonemes (a separate process) are recognised meanwhile, on the other core.
      const voiceReady = ctx.warmVoice(voice).catch(() => undefined);
      const face = await ctx.findFace(portrait);
      await voiceReady;
      if (face === undefined) {
        found = `I found no face in "${portrait.originalName}", so this preview moves the whole picture with your voice instead of animating a mouth; a front-facing photo works best.`;
      }
      draft = generate(draft, s, portrait, voice, ctx);
    }
    for (const intent of edits) draft = await edit(draft, s, intent, uploads, ctx);
    s.draft = draft;
    return found;
  };
  return { turnClass, cost, tools, reply: said.join(' '), apply };
}

function describe(intent: Intent): string {
  switch (intent.kind) {
    case 'talk':
      return '';
    case 'loop':
      return 'The animation now loops seamlessly for the whole clip.';
    case 'title':
      return `I added the title "${intent.text}" (${fmt(intent.startMs)}-${fmt(intent.startMs + intent.durationMs)}).`;
    case 'music':
      return 'Background music is on its own track at 35% volume.';
    case 'aspect':
      return `The canvas is now ${intent.aspect}.`;
    case 'trim':
      return `I trimmed the video to ${intent.seconds}s.`;
    default:
      return unreachable(intent, 'intent');
  }
}

function generate(previous: Draft, s: SessionRecord, portrait: StoredUpload, voice: StoredUpload, ctx: ApplyContext): Draft {
  const durationMs = Math.max(200, Math.round((voice.duration ?? 5) * 1000));
  const canvas = s.canvas ?? canvasFor(orientationOf(portrait));
  s.canvas = canvas;
  const video: DraftSegment = { id: 'v1', src: ctx.mediaUrl(portrait), st: 0, d: durationMs, name: `talking avatar: ${portrait.originalName}`, kind: 'talking-avatar' };
  const audio: DraftSegment = { id: 'a1', src: ctx.mediaUrl(voice), st: 0, d: durationMs, name: `voice-over: ${voice.originalName}`, vol: 1, role: 'voice' };
  // A new generation replaces the picture and the voice; titles and music stay, fitted to it.
  const kept = (previous.t ?? []).filter((t) => t.tt === TrackType.text || (t.tt === TrackType.audio && t.sg.some((g) => g.role === 'music')));
  const draft: Draft = {
    t: [{ tt: TrackType.video, sg: [video] }, { tt: TrackType.audio, sg: [audio] }, ...structuredClone(kept)],
    d: durationMs,
    m: { ...(previous.m ?? {}), title: previous.m?.title ?? portrait.originalName.replace(/\.[^.]+$/, ''), width: canvas.width, height: canvas.height, ratio: canvas.ratio },
  };
  // Music beds follow the new length; titles keep their own time range.
  for (const track of draft.t ?? []) for (const g of track.sg) if (g.role === 'music') g.d = durationMs;
  clipTo(draft, durationMs);
  s.generatedMedia.push({ type: 'video', url: ctx.mediaUrl(portrait), duration: durationMs / 1000 });
  return draft;
}

async function edit(draft: Draft, s: SessionRecord, intent: Intent, uploads: readonly StoredUpload[], ctx: ApplyContext): Promise<Draft> {
  const total = typeof draft.d === 'number' ? draft.d : 0;
  switch (intent.kind) {
    case 'talk':
      return draft;
    case 'loop':
      for (const track of draft.t ?? []) if (track.tt === TrackType.video || track.sg.some((g) => g.role === 'voice')) for (const g of track.sg) g.loop = true;
      return draft;
    case 'title': {
      draft.t ??= [];
      let track = trackOf(draft, TrackType.text);
      if (!track) {
        track = { tt: TrackType.text, sg: [] };
        draft.t.push(track);
      }
      const st = Math.min(intent.startMs, Math.max(0, total - 100));
      track.sg.push({ id: nextId(draft, 'x'), text: intent.text, st, d: Math.max(100, Math.min(intent.durationMs, total - st)), name: 'title' });
      draft.m = { ...(draft.m ?? {}), title: intent.text };
      return draft;
    }
    case 'music': {
      draft.t ??= [];
      const uploaded = musicOf(uploads);
      const media = uploaded ?? (await ctx.makeMusic(total / 1000));
      draft.t = draft.t.filter((t) => !(t.tt === TrackType.audio && t.sg.some((g) => g.role === 'music')));
      draft.t.push({ tt: TrackType.audio, sg: [{ id: nextId(draft, 'm'), src: ctx.mediaUrl(media), st: 0, d: total, name: uploaded ? `music: ${uploaded.originalName}` : 'Calm piano bed', vol: 0.35, role: 'music', loop: true }] });
      if (!uploaded) s.generatedMedia.push({ type: 'audio', url: ctx.mediaUrl(media), duration: total / 1000 });
      return draft;
    }
    case 'aspect': {
      const canvas = canvasFor(intent.aspect);
      s.canvas = canvas;
      if ((draft.t ?? []).length > 0) draft.m = { ...(draft.m ?? {}), width: canvas.width, height: canvas.height, ratio: canvas.ratio };
      return draft;
    }
    case 'trim':
      if (intent.seconds * 1000 < total) clipTo(draft, Math.round(intent.seconds * 1000));
      return draft;
    default:
      return unreachable(intent, 'intent');
  }
}
