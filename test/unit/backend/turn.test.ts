import { describe, expect, it } from 'vitest';
import { classifySseData, readTurnStream, toolLabel, TurnAccumulator, TurnWatch } from '../../../src/backend/turn.js';
import { TurnLostError } from '../../../src/backend/errors.js';
import type { TurnActivity } from '../../../src/backend/types.js';

const adk = (parts: unknown[], extra: Record<string, unknown> = {}) => JSON.stringify({ content: { parts, role: 'model' }, invocationId: 'e-1', author: 'nemo_agent', ...extra });

describe('classifySseData (CONTRACT §3.7)', () => {
  it('treats all three heartbeat forms and non-JSON as keep-alives', () => {
    expect(classifySseData('{"type":"heartbeat"}')).toEqual([{ kind: 'keep-alive' }]);
    expect(classifySseData('')).toEqual([{ kind: 'keep-alive' }]);
    expect(classifySseData('ping')).toEqual([{ kind: 'keep-alive' }]);
  });

  it('reads ADK function calls, responses, text, thoughts and partials', () => {
    expect(classifySseData(adk([{ functionCall: { id: 'fc-1', name: 'generate_video_with_seedance', args: { d: 1 } } }]))).toEqual([
      { kind: 'tool-start', id: 'fc-1', name: 'generate_video_with_seedance', args: { d: 1 } },
    ]);
    expect(classifySseData(adk([{ functionResponse: { id: 'fc-1', name: 'x', response: {} } }]))).toEqual([{ kind: 'tool-end', id: 'fc-1', name: 'x' }]);
    expect(classifySseData(adk([{ text: 'hi' }]))).toEqual([{ kind: 'text', text: 'hi', partial: false }]);
    expect(classifySseData(adk([{ text: 'hm', thought: true }]))).toEqual([{ kind: 'activity' }]);
    expect(classifySseData(adk([{ text: 'h' }], { partial: true }))).toEqual([{ kind: 'text', text: 'h', partial: true }]);
  });

  it('reads stream errors, model errors and legacy typed events', () => {
    expect(classifySseData('{"error":"boom"}')).toEqual([{ kind: 'stream-error', message: 'boom' }]);
    expect(classifySseData('{"errorCode":"SAFETY","errorMessage":"blocked"}')).toEqual([{ kind: 'model-error', message: 'blocked' }]);
    expect(classifySseData('{"type":"text","content":"legacy"}')).toEqual([{ kind: 'text', text: 'legacy', partial: false }]);
    expect(classifySseData('{"type":"tool_call","name":"edit_multitrack"}')).toMatchObject([{ kind: 'tool-start', name: 'edit_multitrack' }]);
    expect(classifySseData('{"type":"tool_result","name":"edit_multitrack"}')).toMatchObject([{ kind: 'tool-end', name: 'edit_multitrack' }]);
    expect(classifySseData('{"type":"done"}')).toEqual([{ kind: 'activity' }]);
  });

  it('labels tools the way the official CLI does', () => {
    expect(toolLabel('generate_video_with_seedance')).toBe('generating video');
    expect(toolLabel('edit_multitrack')).toBe('editing the timeline');
    expect(toolLabel('generate_music_suno')).toBe('making audio');
    expect(toolLabel('some_new_tool')).toBe('some new tool');
  });
});

describe('TurnAccumulator', () => {
  const run = (datas: string[]) => {
    const acc = new TurnAccumulator();
    const activity: TurnActivity[] = [];
    for (const d of datas) for (const f of classifySseData(d)) {
      const a = acc.apply(f);
      if (a) activity.push(a);
    }
    return { reading: acc.reading(), activity };
  };

  it('keeps non-partial text only, so partials and their aggregate are never both printed', () => {
    const { reading, activity } = run([adk([{ text: 'Your ' }], { partial: true }), adk([{ text: 'clip' }], { partial: true }), adk([{ text: 'Your clip' }])]);
    expect(reading.texts).toEqual(['Your clip']);
    expect(activity.filter((a) => a.kind === 'partial-text')).toHaveLength(2);
  });

  it('drops the trailing "temporary issue" noise only after real text', () => {
    expect(run([adk([{ text: 'Done.' }]), adk([{ text: 'I encountered a temporary issue while finishing up.' }])]).reading.texts).toEqual(['Done.']);
    expect(run([adk([{ text: 'I encountered a temporary issue.' }])]).reading.texts).toHaveLength(1);
  });

  it('tracks tool calls left open and the ask_question prompt', () => {
    const open = run([adk([{ functionCall: { id: 'a', name: 'generate_video' } }])]).reading;
    expect(open.openTools).toBe(1);
    const closed = run([adk([{ functionCall: { id: 'a', name: 'edit' } }]), adk([{ functionResponse: { id: 'a', name: 'edit' } }])]).reading;
    expect(closed).toMatchObject({ openTools: 0, tools: ['edit'], texts: [] });
    const ask = run([adk([{ functionCall: { id: 'q', name: 'ask_question', args: { questions: [{ id: 'q1', prompt: 'Which ratio?', options: [{ id: 'a', label: '16:9' }, { id: 'b', label: '9:16' }] }] } } }])]).reading;
    expect(ask.question).toEqual({ prompt: 'Which ratio?', options: ['16:9', '9:16'] });
    expect(ask.openTools).toBe(0);
  });
});

describe('readTurnStream', () => {
  const encoder = new TextEncoder();
  async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
    for (const p of parts) yield encoder.encode(p);
  }
  const limits = { hardLimitMs: 60_000, heartbeatOnlyMs: 60_000, stillWorkingMs: 0 };

  it('parses a message split mid-line across chunks, and comments', async () => {
    const watch = new TurnWatch(limits, undefined, undefined);
    const event = adk([{ text: 'Hello' }]);
    const reading = await readTurnStream(
      chunks(': ping\n\n', 'data: {"type":"heart', 'beat"}\n\n', `data: ${event.slice(0, 10)}`, `${event.slice(10)}\n`, '\n'),
      watch,
      undefined,
    );
    watch.stop();
    expect(reading.texts).toEqual(['Hello']);
    expect(reading.events).toBe(1);
  });

  it('stops at {"error": …} without reading further', async () => {
    const watch = new TurnWatch(limits, undefined, undefined);
    const reading = await readTurnStream(chunks('data: {"error":"crashed"}\n\n', `data: ${adk([{ text: 'late' }])}\n\n`), watch, undefined);
    watch.stop();
    expect(reading.streamError).toBe('crashed');
    expect(reading.texts).toEqual([]);
  });

  it('turns a broken body into TurnLostError("dropped")', async () => {
    const watch = new TurnWatch(limits, undefined, undefined);
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield encoder.encode(`data: ${adk([{ functionCall: { id: 'a', name: 'x' } }])}\n\n`);
      throw Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    }
    await expect(readTurnStream(broken(), watch, undefined)).rejects.toMatchObject({ name: 'TurnLostError', reason: 'dropped' });
    watch.stop();
  });

  it('aborts with TurnLostError at the heartbeat-only limit and reports "still working" meanwhile', async () => {
    const activity: TurnActivity[] = [];
    const watch = new TurnWatch({ hardLimitMs: 60_000, heartbeatOnlyMs: 120, stillWorkingMs: 40 }, (a) => activity.push(a), undefined);
    // A body that sends heartbeats until the watch aborts it.
    async function* heartbeats(): AsyncGenerator<Uint8Array> {
      while (!watch.signal.aborted) {
        yield encoder.encode('data: {"type":"heartbeat"}\n\n');
        await new Promise((resolve) => watch.signal.addEventListener('abort', resolve, { once: true }));
      }
      throw watch.signal.reason;
    }
    const error = await readTurnStream(heartbeats(), watch, undefined).catch((e: unknown) => e);
    watch.stop();
    expect(error).toBeInstanceOf(TurnLostError);
    expect((error as TurnLostError).reason).toBe('heartbeat-only');
    expect(activity.some((a) => a.kind === 'still-working')).toBe(true);
  });
});
