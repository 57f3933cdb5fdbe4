/**
 * Reading one `/run_sse` turn (CONTRACT §3): eventsource-parser over the undici body, each
 * message classified per §3.7, time limits (hard and heartbeat-only), and a progress callback
 * for tool activity and heartbeat-only waits.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { abortReason, formatDuration, linkAbort } from '../core/abort.js';
import type { TurnActivity } from './types.js';
import { TurnLostError } from './errors.js';
import { unreachable } from '../core/unreachable.js';
import { isRecord } from '../core/guards.js';

/**
 * What one SSE message means (CONTRACT §3.7). A message can carry several facts (an ADK event
 * with several parts).
 * - `keep-alive`: a heartbeat in any of its forms, or data that is not JSON
 * - `text`: reply text; `partial` chunks are previews only (§3.3)
 * - `tool-start` / `tool-end`: a function call / response (ADK) or `tool_call` / `tool_result` (legacy)
 * - `stream-error`: `{"error": …}` — the agent's run crashed; the turn is over
 * - `model-error`: an event with `errorCode`/`errorMessage`
 * - `activity`: any other event (thoughts, unknown types): the agent is alive, nothing to show
 */
export type TurnFact =
  | { kind: 'keep-alive' }
  | { kind: 'text'; text: string; partial: boolean }
  | { kind: 'tool-start'; id: string | undefined; name: string; args: unknown }
  | { kind: 'tool-end'; id: string | undefined; name: string }
  | { kind: 'stream-error'; message: string }
  | { kind: 'model-error'; message: string }
  | { kind: 'activity' };

/** A string field, or the fallback when it is missing or not a string. */
function str(value: unknown, fallback: string): string {
  return typeof value === 'string' && value !== '' ? value : typeof value === 'number' ? String(value) : fallback;
}

const KEEP_ALIVE: TurnFact = { kind: 'keep-alive' };
const ACTIVITY: TurnFact = { kind: 'activity' };

/** Classify the data of one SSE message. Comments never get here (they are keep-alives). */
export function classifySseData(data: string): TurnFact[] {
  const trimmed = data.trim();
  if (trimmed === '' || (trimmed[0] !== '{' && trimmed[0] !== '[')) return [KEEP_ALIVE];
  let event: unknown;
  try {
    event = JSON.parse(trimmed);
  } catch {
    return [KEEP_ALIVE];
  }
  if (!isRecord(event)) return [KEEP_ALIVE];
  const type = typeof event.type === 'string' ? event.type : undefined;
  if (type === 'heartbeat' || type === 'ping' || type === 'keepalive') return [KEEP_ALIVE];
  if (event.error !== undefined && event.error !== null && !isRecord(event.content)) {
    const message = typeof event.error === 'string' ? event.error : isRecord(event.error) && typeof event.error.message === 'string' ? event.error.message : JSON.stringify(event.error);
    return [{ kind: 'stream-error', message }];
  }
  const facts: TurnFact[] = [];
  const content = event.content;
  if (isRecord(content) && Array.isArray(content.parts)) {
    const partial = event.partial === true;
    for (const part of content.parts) {
      if (!isRecord(part)) continue;
      if (isRecord(part.functionCall)) {
        const call = part.functionCall;
        facts.push({ kind: 'tool-start', id: typeof call.id === 'string' ? call.id : undefined, name: str(call.name, 'tool'), args: call.args });
      } else if (isRecord(part.functionResponse)) {
        const res = part.functionResponse;
        facts.push({ kind: 'tool-end', id: typeof res.id === 'string' ? res.id : undefined, name: str(res.name, 'tool') });
      } else if (typeof part.text === 'string' && part.thought !== true) {
        facts.push({ kind: 'text', text: part.text, partial });
      }
    }
  }
  if (typeof event.errorCode === 'string' || typeof event.errorMessage === 'string') {
    facts.push({ kind: 'model-error', message: String(event.errorMessage ?? event.errorCode) });
  }
  // Legacy pseudo events (APIREF): {type:"text",content}, {type:"tool_call"|"tool_result",name}.
  if (type === 'text' && typeof event.content === 'string') facts.push({ kind: 'text', text: event.content, partial: false });
  if (type === 'tool_call') facts.push({ kind: 'tool-start', id: undefined, name: str(event.name, 'tool'), args: event.args });
  if (type === 'tool_result') facts.push({ kind: 'tool-end', id: undefined, name: str(event.name, 'tool') });
  if (type === 'error') facts.push({ kind: 'stream-error', message: str(event.message, str(event.content, 'error')) });
  return facts.length > 0 ? facts : [ACTIVITY];
}

/** A short label for a tool, for the spinner (substrings as the official CLI uses them). */
export function toolLabel(name: string): string {
  const n = name.toLowerCase();
  if (n === 'ask_question') return 'asking a question';
  if (n.includes('generate_video') || n.includes('seedance')) return 'generating video';
  if (n.includes('generate_music') || n.includes('suno') || n.includes('music') || n.includes('audio') || n.includes('voiceover')) return 'making audio';
  if (n.includes('edit') || n.includes('draft') || n.includes('multitrack')) return 'editing the timeline';
  if (n.includes('understand') || n.includes('analy')) return 'analysing media';
  return name.replace(/[_-]+/g, ' ');
}

/** The agent's trailing "temporary issue" remark after normal output is noise (CONTRACT §2.4). */
const NOISE = /\btemporary issue\b/i;

/** The raw outcome of reading a turn's stream, before GUI translation and state diff. */
export interface TurnReading {
  /** Non-partial reply texts, noise removed. */
  texts: string[];
  tools: string[];
  /** Tool calls that never got a response (other than `ask_question`). */
  openTools: number;
  question: { prompt: string; options: string[] } | undefined;
  /** Facts other than keep-alives (0 means the stream carried nothing). */
  events: number;
  modelError: string | undefined;
  streamError: string | undefined;
}

/** Folds facts into a `TurnReading`; pure, so benchmarks and tests can drive it directly. */
export class TurnAccumulator {
  private readonly texts: string[] = [];
  private readonly tools: string[] = [];
  private readonly open = new Map<string, string>();
  private anonymousOpen = 0;
  private question: TurnReading['question'];
  private events = 0;
  private modelError: string | undefined;
  private streamError: string | undefined;

  /** Apply one fact; returns the activity to report, if any. */
  apply(fact: TurnFact): TurnActivity | undefined {
    if (fact.kind === 'keep-alive') return undefined;
    this.events += 1;
    switch (fact.kind) {
      case 'text':
        if (fact.partial) return fact.text === '' ? undefined : { kind: 'partial-text', text: fact.text };
        if (fact.text.trim() !== '') this.texts.push(fact.text.trim());
        return undefined;
      case 'tool-start':
        this.tools.push(fact.name);
        if (fact.name === 'ask_question') {
          this.question = questionOf(fact.args);
        } else if (fact.id !== undefined) {
          this.open.set(fact.id, fact.name);
        } else {
          this.anonymousOpen += 1;
        }
        return { kind: 'tool-start', name: fact.name, label: toolLabel(fact.name) };
      case 'tool-end':
        if (fact.id !== undefined && this.open.has(fact.id)) this.open.delete(fact.id);
        else if (this.anonymousOpen > 0) this.anonymousOpen -= 1;
        else {
          // A response whose call we matched by name only (ids differ between forms).
          for (const [id, name] of this.open) {
            if (name === fact.name) {
              this.open.delete(id);
              break;
            }
          }
        }
        return { kind: 'tool-end', name: fact.name };
      case 'stream-error':
        this.streamError = fact.message;
        return undefined;
      case 'model-error':
        this.modelError = fact.message;
        return undefined;
      case 'activity':
        return undefined;
      default:
        return unreachable(fact, 'fact');
    }
  }

  /** True once `{"error": …}` arrived: the turn is over. */
  get failed(): boolean {
    return this.streamError !== undefined;
  }

  reading(): TurnReading {
    // Drop the trailing noise only when something real came before it.
    const texts = [...this.texts];
    while (texts.length > 1 && NOISE.test(texts[texts.length - 1] ?? '')) texts.pop();
    return {
      texts,
      tools: [...this.tools],
      openTools: this.open.size + this.anonymousOpen,
      question: this.question,
      events: this.events,
      modelError: this.modelError,
      streamError: this.streamError,
    };
  }
}

/** `ask_question` arguments: `{questions:[{prompt, options:[{label}]}]}` (CONTRACT Q18). */
function questionOf(args: unknown): TurnReading['question'] {
  const first: unknown = isRecord(args) && Array.isArray(args.questions) ? args.questions[0] : args;
  if (!isRecord(first)) return { prompt: 'the agent asked a question', options: [] };
  const options = Array.isArray(first.options)
    ? first.options.map((o) => (isRecord(o) ? str(o.label, str(o.id, '')) : str(o, ''))).filter((s) => s !== '')
    : [];
  return { prompt: str(first.prompt, str(first.question, 'the agent asked a question')), options };
}

/** Limits of one turn. */
export interface TurnLimits {
  hardLimitMs: number;
  heartbeatOnlyMs: number;
  stillWorkingMs: number;
}

/**
 * The clock of one turn: aborts its controller with a `TurnLostError` at the hard limit or after
 * too long with keep-alives only, and reports "still working" during heartbeat-only waits. Start
 * it before the request is sent, so a server that never answers is covered too.
 */
export class TurnWatch {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timers = new Set<NodeJS.Timeout>();
  private idleTimer: NodeJS.Timeout | undefined;
  private stillTimer: NodeJS.Timeout | undefined;
  private lastActivity = Date.now();
  private readonly unlink: () => void;

  constructor(
    private readonly limits: TurnLimits,
    private readonly onActivity: ((a: TurnActivity) => void) | undefined,
    parent: AbortSignal | undefined,
  ) {
    this.signal = this.controller.signal;
    this.unlink = linkAbort(parent, this.controller);
    const hard = setTimeout(() => {
      this.abort(new TurnLostError('timeout', `the agent's turn passed the ${formatDuration(limits.hardLimitMs)} limit`));
    }, limits.hardLimitMs);
    this.timers.add(hard);
    this.activity();
  }

  /** Something other than a keep-alive arrived: restart the heartbeat-only clock. */
  activity(): void {
    this.lastActivity = Date.now();
    this.clear(this.idleTimer);
    this.clear(this.stillTimer);
    this.idleTimer = this.after(this.limits.heartbeatOnlyMs, () => {
      this.abort(new TurnLostError('heartbeat-only', `the agent sent only keep-alives for ${formatDuration(this.limits.heartbeatOnlyMs)}`));
    });
    this.scheduleStillWorking();
  }

  private scheduleStillWorking(): void {
    if (this.limits.stillWorkingMs <= 0) return;
    this.stillTimer = this.after(this.limits.stillWorkingMs, () => {
      this.onActivity?.({ kind: 'still-working', waitedMs: Date.now() - this.lastActivity });
      this.scheduleStillWorking();
    });
  }

  private after(ms: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  private clear(timer: NodeJS.Timeout | undefined): void {
    if (timer === undefined) return;
    clearTimeout(timer);
    this.timers.delete(timer);
  }

  private abort(reason: Error): void {
    this.stop();
    this.controller.abort(reason);
  }

  /** Clear every timer and stop following the parent signal; safe to call twice. */
  stop(): void {
    this.unlink();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.idleTimer = undefined;
    this.stillTimer = undefined;
  }
}

/**
 * Read an SSE body to its end (or to `{"error": …}`), feeding facts to the accumulator and the
 * watch. A broken connection becomes `TurnLostError('dropped')`; a limit the watch's reason.
 */
export async function readTurnStream(
  body: AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => unknown },
  watch: TurnWatch,
  onActivity: ((a: TurnActivity) => void) | undefined,
): Promise<TurnReading> {
  const acc = new TurnAccumulator();
  const handle = (facts: TurnFact[]): void => {
    for (const fact of facts) {
      if (fact.kind !== 'keep-alive') watch.activity();
      const activity = acc.apply(fact);
      if (activity) onActivity?.(activity);
    }
  };
  const parser = createParser({
    onEvent: (message: EventSourceMessage) => handle(classifySseData(message.data)),
    // `: ping` comments are keep-alives: nothing to do.
    onComment: () => undefined,
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of body) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (acc.failed) break;
    }
    parser.feed(decoder.decode());
  } catch (error) {
    if (watch.signal.aborted) throw abortReason(watch.signal, error);
    throw new TurnLostError('dropped', 'the connection to the agent broke while the turn was running', error);
  } finally {
    body.destroy?.();
  }
  return acc.reading();
}
