import { afterEach, describe, expect, it } from 'vitest';
import { BackendError } from '../../../src/core/errors.js';
import { TurnLostError } from '../../../src/backend/index.js';
import type { TurnActivity } from '../../../src/backend/types.js';
import { parseFaultRule, type LocalBackendOptions } from '../../../src/local-backend/index.js';
import type { SessionId } from '../../../src/core/ids.js';
import { makeMedia, startRig, type Rig } from './rig.js';
import type { BackendTiming } from '../../../src/backend/index.js';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** A rig with a session holding a portrait and a voice-over, ready for a generation turn. */
async function ready(local: LocalBackendOptions = {}, timing: Partial<BackendTiming> = {}): Promise<{ r: Rig; sessionId: SessionId }> {
  const r = await startRig({ local, timing });
  rig = r;
  const media = makeMedia(r.dir);
  const { sessionId } = await r.client.createSession({ taskName: 'p', language: 'en' });
  await r.client.uploadFile(sessionId, media.portrait);
  await r.client.uploadFile(sessionId, media.voice);
  return { r, sessionId };
}

const TALK = 'Make this photo talk using my voiceover';

describe('SSE turns', () => {
  it.each(['json', 'empty', 'comment'] as const)('stays open through "%s" heartbeats and reports "still working"', async (heartbeat) => {
    const { r, sessionId } = await ready({ compat: { heartbeat }, heartbeatMs: 10, turnDelayMs: { generation: 200 } }, { stillWorkingMs: 50 });
    const activity: TurnActivity[] = [];
    const turn = await r.client.sendInstruction(sessionId, TALK, { onActivity: (a) => activity.push(a) });
    expect(turn.text).toMatch(/talking avatar is ready/);
    expect(activity.filter((a) => a.kind === 'still-working').length).toBeGreaterThan(0);
    expect(activity).toContainEqual({ kind: 'tool-end', name: 'generate_video_talking_avatar' });
  });

  it('reads the legacy typed events too', async () => {
    const { r, sessionId } = await ready({ compat: { sse: 'legacy' } });
    const turn = await r.client.sendInstruction(sessionId, TALK);
    expect(turn.text).toMatch(/talking avatar is ready/);
    expect(turn.tools).toEqual(['generate_video_talking_avatar']);
  });

  it('a turn with no text is confirmed by reading state and described', async () => {
    const { r, sessionId } = await ready({ faults: [parseFaultRule('sse:notext:x1')] });
    const turn = await r.client.sendInstruction(sessionId, TALK);
    expect(turn).toMatchObject({ text: '', silent: true, tools: ['generate_video_talking_avatar'] });
    expect(turn.change).toMatch(/added \d+ tracks?/);
  });

  it('a dropped stream is a lost turn, and recovery finds it applied', async () => {
    const { r, sessionId } = await ready({ faults: [parseFaultRule('sse:drop:x1')] });
    const baseline = await r.client.captureBaseline(sessionId);
    const error = await r.client.sendInstruction(sessionId, TALK, { baseline }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TurnLostError);
    expect((error as TurnLostError).reason).toBe('dropped');
    await expect(r.client.recoverTurn(sessionId, baseline)).resolves.toEqual({ outcome: 'applied', credits: 100 });
    expect(r.backend.stats().messages).toBe(1);
  });

  it('a stalled turn times out on heartbeat-only, and recovery finds it not applied', async () => {
    const { r, sessionId } = await ready({ faults: [parseFaultRule('sse:stall:x1')] }, { sseHeartbeatOnlyMs: 200 });
    const baseline = await r.client.captureBaseline(sessionId);
    const error = await r.client.sendInstruction(sessionId, TALK, { baseline }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'TurnLostError', reason: 'heartbeat-only' });
    await expect(r.client.recoverTurn(sessionId, baseline)).resolves.toEqual({ outcome: 'not-applied' });
    expect(r.backend.stats().creditsSpent).toBe(0);
  });

  it('heartbeats only: times out after the heartbeat-only limit while reporting "still working"', async () => {
    const { r, sessionId } = await ready({ heartbeatMs: 10 }, { sseHeartbeatOnlyMs: 250, stillWorkingMs: 60 });
    const activity: TurnActivity[] = [];
    const error = await r.client.sendInstruction(sessionId, `${TALK} #scenario:stall`, { onActivity: (a) => activity.push(a) }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'TurnLostError', reason: 'heartbeat-only' });
    expect(activity.filter((a) => a.kind === 'still-working').length).toBeGreaterThanOrEqual(2);
  });

  it('the hard limit ends a turn even while events keep coming', async () => {
    const { r, sessionId } = await ready({ heartbeatMs: 10, turnDelayMs: { generation: 2_000 } }, { sseHardLimitMs: 250 });
    const error = await r.client.sendInstruction(sessionId, TALK).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'TurnLostError', reason: 'timeout' });
  });

  it("recovery on a shared account: another session's charge is not this turn's; an unexplained one ends as unknown, never as applied", async () => {
    const { r, sessionId: a } = await ready({ anonymousCredits: 300 }, { recoveryFirstMs: 10, recoveryNextMs: 10, recoveryReads: 3 });
    const media = makeMedia(r.dir);
    const { sessionId: b } = await r.client.createSession({ taskName: 'q', language: 'en' });
    await r.client.uploadFile(b, media.portrait);
    await r.client.uploadFile(b, media.voice);
    // A's turn is recorded, then lost before it reached the agent; B's turn runs and is charged.
    const baseline = await r.client.captureBaseline(a);
    await r.client.sendInstruction(b, TALK);
    expect(r.backend.stats().creditsSpent).toBe(100);
    // Alone, the account's charge would read as A's turn: the old blind spot.
    await expect(r.client.recoverTurn(a, baseline)).resolves.toEqual({ outcome: 'applied', credits: 100 });
    // With B's turn booked at its charge, A's read shows nothing of its own: not applied.
    await expect(r.client.recoverTurn(a, baseline, { activity: () => ({ alone: false, othersOpen: 0, othersUnsettled: 0, othersCharged: 100 }) })).resolves.toEqual({ outcome: 'not-applied' });
    // With B's outcome unknown, the charge could be either's: A is reported unknown, not applied.
    await expect(r.client.recoverTurn(a, baseline, { activity: () => ({ alone: false, othersOpen: 0, othersUnsettled: 1, othersCharged: 0 }) })).resolves.toMatchObject({ outcome: 'unknown', why: expect.stringMatching(/100 credits were charged/) as unknown });
    expect(r.backend.stats().messages).toBe(1);
  });

  it('recovery reports "running" while credits stay frozen past its window', async () => {
    const { r, sessionId } = await ready({ heartbeatMs: 10, turnDelayMs: { generation: 3_000 } }, { sseHardLimitMs: 150, recoveryMaxMs: 300 });
    const baseline = await r.client.captureBaseline(sessionId);
    await r.client.sendInstruction(sessionId, TALK, { baseline }).catch(() => undefined);
    await expect(r.client.recoverTurn(sessionId, baseline)).resolves.toEqual({ outcome: 'running' });
  });

  it('{"error": …} mid-stream fails the turn without resending it', async () => {
    const { r, sessionId } = await ready();
    const error = await r.client.sendInstruction(sessionId, `${TALK} #scenario:error-midstream`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect(error).not.toBeInstanceOf(TurnLostError);
    expect((error as BackendError).message).toMatch(/the agent's run failed/);
    expect(r.backend.stats().requests.sse).toBe(1);
  });

  it('returns an ask_question with its options', async () => {
    const { r, sessionId } = await ready();
    const turn = await r.client.sendInstruction(sessionId, `${TALK} #scenario:ask`);
    expect(turn.question).toEqual({ prompt: 'Which aspect ratio should the video have?', options: ['Landscape 16:9', 'Vertical 9:16', 'Square 1:1'] });
    expect(turn.silent).toBe(false);
  });

  it('drops the trailing "temporary issue" noise', async () => {
    const { r, sessionId } = await ready();
    const turn = await r.client.sendInstruction(sessionId, `${TALK} #scenario:noise`);
    expect(turn.text).toMatch(/talking avatar is ready/);
    expect(turn.text).not.toMatch(/temporary issue/);
  });

  it('an unknown session is 1002 before any stream (ADK-style 404 with detail in status mode)', async () => {
    const { r } = await ready({ compat: { errors: 'status' } });
    const error = await r.client.sendInstruction('1111111111111111111' as SessionId, 'hello').catch((e: unknown) => e);
    expect(error).toMatchObject({ envelopeCode: 1002, status: 404 });
  });

  it('the token expiring mid-turn is renewed for the same anonymous user', async () => {
    // One hand-moved clock for the backend and the client: the token lapses during the turn
    // because the test moves time there, not because a wait outlasted it.
    let now = Date.now();
    const clock = { now: () => now };
    const r = await startRig({ local: { tokenTtlMs: 300, clock }, clock });
    rig = r;
    const media = makeMedia(r.dir);
    const { sessionId } = await r.client.createSession({ taskName: 'p', language: 'en' });
    await r.client.uploadFile(sessionId, media.portrait);
    await r.client.uploadFile(sessionId, media.voice);
    const first = await r.tokens.token();
    const user = r.tokens.anonymousUserId();
    const issued = r.backend.stats().tokensIssued;
    let moved = false;
    await r.client.sendInstruction(sessionId, TALK, { onActivity: () => {
      if (!moved) now += 300;
      moved = true;
    } });
    expect(moved).toBe(true);
    const state = await r.client.getState(sessionId);
    expect(state.session_id).toBe(sessionId);
    expect(await r.tokens.token()).not.toBe(first);
    expect(r.tokens.anonymousUserId()).toBe(user);
    expect(r.backend.stats().tokensIssued).toBeGreaterThan(issued);
  });
});
