/**
 * One `/run_sse` turn: ADK events over SSE (CONTRACT §3) — functionCall → heartbeats →
 * functionResponse → text, camelCase, connection closed at the end. The turn is detached from
 * the response: when the client disconnects it keeps running to completion, is charged once
 * and changes the draft, exactly as the real backend does. Credits are frozen while it runs,
 * spent at its end, released on failure.
 */
import type { ServerResponse } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { sleep } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import type { CompatOptions } from './options.js';
import type { ApplyContext, TurnPlan } from './agent.js';
import type { UserRecord } from './store.js';
import { unreachable } from '../core/unreachable.js';

/** Test scenarios selected by `X-Emulator-Scenario` or `#scenario:NAME` in the text (CONTRACT §3.9). */
export type Scenario = 'normal' | 'ask' | 'error-midstream' | 'stall' | 'noise';

const NOISE = 'I encountered a temporary issue while finishing up. Please try again if anything looks wrong.';

/** Writes SSE messages in the selected style; silently drops writes once the client is gone. */
export class SseWriter {
  private connected: boolean;
  private ended = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly compat: CompatOptions,
    private readonly invocationId: string,
    /** Stamps each event's `timestamp`. */
    private readonly clock: Clock,
  ) {
    // A client may be gone before the turn begins (while the route's latency was waited).
    this.connected = !res.destroyed;
    res.on('close', () => {
      this.connected = false;
    });
  }

  get isConnected(): boolean {
    return this.connected && !this.ended;
  }

  open(): void {
    this.res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    this.res.flushHeaders();
  }

  private write(text: string): void {
    if (this.isConnected) this.res.write(text);
  }

  private data(payload: unknown): void {
    this.write(`data: ${JSON.stringify(payload)}\n\n`);
  }

  private event(content: unknown, extra: Record<string, unknown> = {}): void {
    this.data({
      content,
      invocationId: this.invocationId,
      author: 'nemo_agent',
      actions: { stateDelta: {}, artifactDelta: {}, requestedAuthConfigs: {} },
      ...extra,
      id: randomBytes(6).toString('base64url'),
      timestamp: this.clock.now() / 1000,
    });
  }

  call(id: string, name: string, args: Record<string, unknown>, longRunning: boolean): void {
    if (this.compat.sse === 'legacy') this.data({ type: 'tool_call', name, args });
    else this.event({ parts: [{ functionCall: { id, name, args } }], role: 'model' }, { longRunningToolIds: longRunning ? [id] : [] });
  }

  response(id: string, name: string, response: Record<string, unknown>): void {
    if (this.compat.sse === 'legacy') this.data({ type: 'tool_result', name, result: response });
    else this.event({ parts: [{ functionResponse: { id, name, response } }], role: 'user' });
  }

  text(text: string, partial = false): void {
    if (this.compat.sse === 'legacy') this.data({ type: 'text', content: text, ...(partial ? { partial: true } : {}) });
    else this.event({ parts: [{ text }], role: 'model' }, partial ? { partial: true } : {});
  }

  error(message: string): void {
    this.data({ error: message });
  }

  heartbeat(): void {
    switch (this.compat.heartbeat) {
      case 'json':
        this.data({ type: 'heartbeat' });
        break;
      case 'empty':
        this.write('data:\n\n');
        break;
      case 'comment':
        this.write(': ping\n\n');
        break;
      default:
        return unreachable(this.compat.heartbeat, 'heartbeat');
    }
  }

  /** End the stream (the turn may go on without it). */
  close(): void {
    if (!this.ended) {
      this.ended = true;
      if (this.connected) this.res.end();
    }
  }
}

/** What a turn needs from the server. */
export interface TurnDeps {
  compat: CompatOptions;
  heartbeatMs: number;
  delays: { generation: number; edit: number };
  /** Persist after the turn changed credits or the draft. */
  save: () => Promise<void>;
  onSpent: (credits: number) => void;
  emit: (type: string, fields: Record<string, unknown>) => void;
  /** Aborts on server shutdown. */
  signal: AbortSignal;
}

/** One accepted turn. */
export interface TurnParams {
  sessionId: string;
  user: UserRecord;
  plan: TurnPlan;
  writer: SseWriter;
  scenario: Scenario;
  drop: boolean;
  notext: boolean;
  /** This edit ends without text (the ~30 % silent edits). */
  silent: boolean;
  noise: boolean;
  streaming: boolean;
  applyContext: Omit<ApplyContext, 'signal'>;
}

/** Wait `ms`, sending a heartbeat at every full interval. */
async function work(ms: number, deps: TurnDeps, writer: SseWriter): Promise<void> {
  let left = ms;
  while (left > 0) {
    const step = Math.min(left, deps.heartbeatMs);
    await sleep(step, deps.signal);
    left -= step;
    if (step === deps.heartbeatMs) writer.heartbeat();
  }
}

/**
 * Run a turn to completion. Credits must be checked by the caller; this freezes them
 * synchronously, before its first await, so a credits read right after acceptance sees them.
 */
export async function runTurn(deps: TurnDeps, p: TurnParams): Promise<void> {
  const { user, plan, writer } = p;
  const cost = p.scenario === 'normal' || p.scenario === 'noise' ? plan.cost : 0;
  user.available -= cost;
  user.frozen += cost;
  let settled = false;
  const settle = (spent: boolean): void => {
    if (settled) return;
    settled = true;
    user.frozen -= cost;
    if (spent) {
      user.spent += cost;
      deps.onSpent(cost);
    } else user.available += cost;
  };
  try {
    writer.open();
    void deps.save();
    if (p.scenario === 'ask') {
      writer.call(`fc-${randomUUID()}`, 'ask_question', {
        questions: [
          {
            id: 'q1',
            prompt: 'Which aspect ratio should the video have?',
            options: [
              { id: '16:9', label: 'Landscape 16:9' },
              { id: '9:16', label: 'Vertical 9:16' },
              { id: '1:1', label: 'Square 1:1' },
            ],
            allow_multiple: false,
          },
        ],
      }, false);
      settle(false);
      deps.emit('turn:done', { sessionId: p.sessionId, cost: 0, silent: true, connected: writer.isConnected, scenario: 'ask' });
      return;
    }
    if (p.scenario === 'stall') {
      // Heartbeats only, for as long as the client listens.
      while (writer.isConnected) await work(deps.heartbeatMs, deps, writer);
      settle(false);
      deps.emit('turn:done', { sessionId: p.sessionId, cost: 0, silent: true, connected: false, scenario: 'stall' });
      return;
    }
    let first = true;
    const calls = plan.tools.map((tool) => ({ tool, id: `fc-${randomUUID()}` }));
    for (const { tool, id } of calls) {
      writer.call(id, tool.name, tool.args, tool.name.startsWith('generate_video'));
      if (first && p.drop) writer.close();
      first = false;
      if (p.scenario === 'error-midstream') {
        writer.error('The agent run failed: tool execution raised an internal error.');
        writer.close();
        settle(false);
        return;
      }
      await work(tool.name.startsWith('generate_video') ? deps.delays.generation : deps.delays.edit, deps, writer);
    }
    const found = calls.length > 0 ? await plan.apply({ ...p.applyContext, signal: deps.signal }) : undefined;
    const reply = found ? `${plan.reply} ${found}` : plan.reply;
    for (const { tool, id } of calls) writer.response(id, tool.name, tool.response);
    const silent = (p.silent && plan.turnClass === 'edit') || p.notext;
    if (!silent && p.drop) writer.close();
    if (!silent) {
      if (p.streaming) {
        const words = reply.split(' ');
        const half = Math.ceil(words.length / 2);
        writer.text(words.slice(0, half).join(' ') + ' ', true);
        writer.text(words.slice(half).join(' '), true);
      }
      writer.text(reply);
      if (p.noise || p.scenario === 'noise') writer.text(NOISE);
    }
    settle(true);
    await deps.save();
    deps.emit('turn:done', { sessionId: p.sessionId, cost, silent, connected: writer.isConnected });
  } catch (error) {
    settle(false);
    if (!deps.signal.aborted) {
      writer.error(`The agent run failed: ${error instanceof Error ? error.message : String(error)}`);
      deps.emit('turn:failed', { sessionId: p.sessionId, error: error instanceof Error ? error.message : String(error) });
    }
    void deps.save();
  } finally {
    writer.close();
  }
}
