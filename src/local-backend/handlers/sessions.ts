/**
 * The session routes: creating a project with its agent session (§2.2), reading its state
 * (§2.7), and a chat turn over SSE (§2.4, §3): credits checked before the stream starts, the
 * turn itself run by `turn.ts`, detached from the response.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { CreateSessionData, SessionStateData } from '../../contract/bodies.js';
import { ErrorCodes } from '../../contract/codes.js';
import { planTurn } from '../agent.js';
import type { Handlers } from '../context.js';
import { authenticate, guard, isOwnSlot, ownSession } from '../guard.js';
import { requestHeader, sendCodeError, sendOk, sendRouteError } from '../http.js';
import { readBody, readCreateSessionBody, readRunSseBody, turnText } from '../request-bodies.js';
import type { SessionRecord, StoredUpload } from '../store.js';
import { runTurn, SseWriter, type Scenario } from '../turn.js';
import { describeUpload, mediaUrl, withCurrentUrls } from '../urls.js';

const SCENARIOS = ['ask', 'error-midstream', 'stall', 'noise'] as const satisfies readonly Scenario[];

export const sessionHandlers: Handlers<'session' | 'state' | 'sse'> = {
  session: async (ctx, req, res, params) => {
    const user = authenticate(ctx, req, res, 'session');
    if (!user) return;
    if (!isOwnSlot(user, params.user)) {
      sendRouteError(res, ctx.compat, 'session', ErrorCodes.sessionNotFound, 'unknown user in the path; use "me"');
      return;
    }
    const body = await readBody(req, readCreateSessionBody);
    const id = `${randomInt(1, 10)}${Array.from({ length: 18 }, () => randomInt(0, 10)).join('')}`;
    const session: SessionRecord = {
      id,
      taskId: `task_${randomBytes(8).toString('hex')}`,
      userId: user.id,
      taskName: body.task_name ?? 'project',
      language: body.language ?? 'en',
      uploads: [],
      draft: undefined,
      canvas: undefined,
      generatedMedia: [],
      createdAt: ctx.clock.now(),
    };
    ctx.store.data.sessions[id] = session;
    ctx.stats.sessionsCreated += 1;
    await ctx.store.save({ sessions: id });
    ctx.emit({ type: 'session:created', sessionId: id });
    sendOk(res, { task_id: session.taskId, session_id: id, user_id: user.id } satisfies CreateSessionData);
  },

  state: async (ctx, req, res, params) => {
    const caller = guard(ctx, req, res, 'state', { userSlot: params.user, sessionId: params.sessionId, missing: 'session not found; create a new session' });
    if (!caller) return;
    const { user, session } = caller;
    const uploads = session.uploads.map((id) => ctx.store.data.uploads[id]).filter((u): u is StoredUpload => u !== undefined && !u.generated);
    const state: SessionStateData['state'] = {
      video_infos: uploads.map((u) => describeUpload(ctx, u)),
      canvas_config: session.canvas ?? {},
      video_analyses: {},
      generated_media: session.generatedMedia.map((g) => ({ ...g, url: g.url.replace(/^https?:\/\/[^/]+(?=\/media\/)/, ctx.baseUrl()) })),
    };
    if (session.draft && Object.keys(session.draft).length > 0) state.draft = withCurrentUrls(ctx, session.draft);
    else if (ctx.compat.noDraft === 'null') state.draft = null;
    else if (ctx.compat.noDraft === 'empty') state.draft = {};
    sendOk(res, { session_id: session.id, task_id: session.taskId, task_name: session.taskName, user_id: user.id, state } satisfies SessionStateData & { user_id: string });
  },

  sse: async (ctx, req, res, _params, faults) => {
    const user = authenticate(ctx, req, res, 'sse');
    if (!user) return;
    const body = await readBody(req, readRunSseBody);
    const session = ownSession(ctx, res, 'sse', user, { userSlot: body.user_id, sessionId: body.session_id, missing: `Session not found: ${body.session_id ?? '(none)'}` });
    if (!session) return;
    const text = turnText(body);
    if (ctx.compat.concurrentTurn === '409' && (ctx.busySessions.get(session.id) ?? 0) > 0) {
      sendCodeError(res, ctx.compat, 409, 'a turn is already running on this session; wait for it to finish', { forceStatus: 409, detail: true });
      return;
    }
    const scenarioHeader = requestHeader(req, 'x-emulator-scenario') ?? /#scenario:([a-z-]+)/.exec(text)?.[1];
    const scenario: Scenario = SCENARIOS.find((s) => s === scenarioHeader) ?? 'normal';
    const uploads = session.uploads.map((id) => ctx.store.data.uploads[id]).filter((u): u is StoredUpload => u !== undefined);
    const plan = planTurn(text.replace(/#scenario:[a-z-]+/, ''), session, uploads);
    const charged = scenario === 'normal' || scenario === 'noise' ? plan.cost : 0;
    if (user.available < charged) {
      // Refused before any stream starts, and not counted as a message (SPEC §5).
      sendRouteError(res, ctx.compat, 'sse', ErrorCodes.outOfCredits, `not enough credits: this turn costs ${charged} and ${user.available} are available; register to keep your work and get more`);
      return;
    }
    ctx.stats.messages += 1;
    const invocationId = `e-${randomUUID()}`;
    const writer = new SseWriter(res, ctx.compat, invocationId, ctx.clock);
    ctx.busySessions.set(session.id, (ctx.busySessions.get(session.id) ?? 0) + 1);
    ctx.emit({ type: 'turn:accepted', sessionId: session.id, invocationId, cost: charged, turnClass: plan.turnClass });
    const turn = runTurn(
      {
        compat: ctx.compat,
        heartbeatMs: ctx.heartbeatMs,
        delays: ctx.turnDelays,
        // A turn changes the user's credits, the session (draft, canvas) and may add uploads.
        save: () => ctx.store.save({ users: user.id, sessions: session.id, uploads: session.uploads }),
        onSpent: (credits) => {
          ctx.stats.creditsSpent += credits;
        },
        emit: (type, fields) => ctx.emit({ type, ...fields }),
        signal: ctx.shutdown,
      },
      {
        sessionId: session.id,
        user,
        plan,
        writer,
        scenario,
        drop: faults.drop,
        notext: faults.notext,
        silent: plan.turnClass === 'edit' && ctx.random() < ctx.silentEditRatio,
        noise: ctx.noiseRatio > 0 && ctx.random() < ctx.noiseRatio,
        streaming: body.streaming,
        applyContext: {
          session,
          mediaUrl: (u) => mediaUrl(ctx, u),
          findFace: (u) => ctx.media.faceOf(u, ctx.shutdown),
          warmVoice: (u) => ctx.media.phonesOf(u, ctx.shutdown),
          makeMusic: async (seconds) => {
            const record = await ctx.media.makeMusic(session.id, seconds, ctx.shutdown);
            ctx.store.data.uploads[record.id] = record;
            session.uploads.push(record.id);
            return record;
          },
        },
      },
    ).finally(() => {
      ctx.busySessions.set(session.id, (ctx.busySessions.get(session.id) ?? 1) - 1);
      ctx.turns.delete(turn);
    });
    ctx.turns.add(turn);
    // The response ends when the turn's stream does; the turn itself outlives a disconnect.
    await new Promise<void>((resolve) => {
      res.on('close', () => resolve());
      void turn.finally(() => resolve());
    });
  },
};
