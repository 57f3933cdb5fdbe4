/**
 * The price list and the instruction classifier, in one place: `talk plan` estimates with it,
 * the runner's budget guard checks with it, and the local backend charges with it. Costs are
 * the contract's (§6): a generation ≈ 100 credits, an edit ≈ 50, a question 0, export free.
 *
 * Why a function lives in `contract/`: the client and the local backend must agree on what an
 * instruction costs, and they may share nothing but this folder.
 */

export const PRICES = {
  generation: 100,
  edit: 50,
  question: 0,
  export: 0,
} as const;

/** Credits an anonymous token starts with (§2.1). */
export const ANONYMOUS_GRANT = 100;

export type Aspect = '16:9' | '9:16' | '1:1';

/**
 * What an instruction asks for. A turn may hold several (e.g. "make it talk and loop it").
 * - `talk`: generation — animate the portrait for the voice-over's length
 * - `loop`: repeat the animation to fill the timeline
 * - `title`: a text track (`text`, shown from `startMs` for `durationMs`)
 * - `music`: background music at 35 %
 * - `aspect`: change the canvas
 * - `trim`: cut the timeline to `seconds`
 */
export type Intent =
  | { kind: 'talk' }
  | { kind: 'loop' }
  | { kind: 'title'; text: string; startMs: number; durationMs: number }
  | { kind: 'music' }
  | { kind: 'aspect'; aspect: Aspect }
  | { kind: 'trim'; seconds: number };

export type IntentKind = Intent['kind'];

/** `generation` when the turn generates, `edit` when it only edits, `question` when nothing maps. */
export type TurnClass = 'generation' | 'edit' | 'question';

export interface Classification {
  intents: Intent[];
  turnClass: TurnClass;
  /** Credits the turn costs: the price of its most expensive intent. */
  cost: number;
}

const TALK = /\b(talk(ing)?|speak(ing)?|lip[\s-]?sync|animate|animation of|avatar|generate)\b|说话|对口型|口型|生成/i;
const LOOP = /\b(loop(ed|ing|s)?|repeat(ed|ing)?|infinite(ly)?)\b|循环/i;
const TITLE = /\b(title|caption|headline|text overlay|subtitle)\b|标题|字幕/i;
const MUSIC = /\b(background music|bgm|music|soundtrack)\b|背景音乐|配乐/i;
const TRIM = /\b(?:trim|cut|shorten|limit)\b[^.\d]*?(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)\b|(?:裁剪|剪)[^\d]*(\d+(?:\.\d+)?)\s*秒/i;
const QUOTED = /["“”«»「」『』']([^"“”«»「」『』']{1,120})["“”«»「」『』']/;
const TITLE_FOR = /\bfor (?:the first )?(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)\b/i;

function aspectOf(text: string): Aspect | undefined {
  if (/\b16\s*[:x×]\s*9\b|\b(landscape|horizontal|widescreen)\b|横屏/i.test(text)) return '16:9';
  if (/\b9\s*[:x×]\s*16\b|\b(vertical|portrait mode|story format|reels?|tiktok|shorts)\b|竖屏/i.test(text)) return '9:16';
  if (/\b1\s*[:x×]\s*1\b|\bsquare\b|方形/i.test(text)) return '1:1';
  return undefined;
}

function titleOf(text: string): Intent | undefined {
  if (!TITLE.test(text)) return undefined;
  const quoted = QUOTED.exec(text)?.[1]?.trim();
  const saying = /\b(?:saying|that says|reading|with text)\s+(.{1,80}?)(?:[.,;]|$)/i.exec(text)?.[1]?.trim();
  const title = quoted ?? saying;
  if (!title) return undefined;
  const seconds = Number(TITLE_FOR.exec(text)?.[1] ?? '3');
  return { kind: 'title', text: title, startMs: 0, durationMs: Math.round(seconds * 1000) };
}

/** Classify an instruction by intent. Deterministic: the same text always gives the same answer. */
export function classifyInstruction(text: string): Classification {
  const intents: Intent[] = [];
  // Strip quoted titles first so words inside a title ("Loop Talk") are not read as commands.
  const unquoted = text.replace(new RegExp(QUOTED.source, 'g'), ' ');
  if (TALK.test(unquoted)) intents.push({ kind: 'talk' });
  if (LOOP.test(unquoted)) intents.push({ kind: 'loop' });
  const title = titleOf(text);
  if (title) intents.push(title);
  if (MUSIC.test(unquoted)) intents.push({ kind: 'music' });
  const aspect = aspectOf(unquoted);
  if (aspect) intents.push({ kind: 'aspect', aspect });
  const trim = TRIM.exec(unquoted);
  const trimSeconds = trim ? Number(trim[1] ?? trim[2]) : undefined;
  if (trimSeconds !== undefined && trimSeconds > 0) intents.push({ kind: 'trim', seconds: trimSeconds });

  const turnClass: TurnClass = intents.some((i) => i.kind === 'talk')
    ? 'generation'
    : intents.length > 0
      ? 'edit'
      : 'question';
  return { intents, turnClass, cost: PRICES[turnClass] };
}
