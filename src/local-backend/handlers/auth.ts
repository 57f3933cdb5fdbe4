/**
 * The account routes: anonymous tokens (§2.1, with the per-client and per-IP rules), the
 * browser claim token (§2.3) and the credit balance (§2.6).
 */
import { randomBytes } from 'node:crypto';
import type { AnonymousTokenData, ClaimTokenData, CreditsData } from '../../contract/bodies.js';
import { ErrorCodes } from '../../contract/codes.js';
import type { Handlers } from '../context.js';
import { authenticate, ownSession } from '../guard.js';
import { requestHeader, sendCodeError, sendOk, sendRouteError } from '../http.js';
import { readBody, readClaimTokenBody } from '../request-bodies.js';
import { tokenHash } from '../store.js';

/** The anonymous-token quota window per IP (CONTRACT §2.1: 10 per 7 days). */
const IP_QUOTA_WINDOW_MS = 7 * 24 * 3600 * 1000;

/** The claim token's lifetime, seconds (§2.3: 7 days). */
const CLAIM_TOKEN_SECONDS = 604800;

export const authHandlers: Handlers<'auth' | 'claim' | 'credits'> = {
  auth: async (ctx, req, res) => {
    const clientId = requestHeader(req, 'x-client-id')?.trim();
    if (!clientId || clientId.length > 64) {
      sendCodeError(res, ctx.compat, 400, 'X-Client-Id is required (a stable id of at most 64 characters, e.g. a UUID)', { forceStatus: 400 });
      return;
    }
    const now = ctx.clock.now();
    const live = ctx.store.liveTokens.get(clientId);
    const liveRecord = live ? ctx.store.data.tokens[tokenHash(live)] : undefined;
    const existing = Object.values(ctx.store.data.tokens).find((t) => t.clientId === clientId && t.expiresAt > now);
    if (existing && ctx.compat.anonRepeat === '429') {
      sendCodeError(res, ctx.compat, 429, 'one anonymous token per client id per 7 days; wait and retry', { forceStatus: 429, headers: { 'retry-after': '30' } });
      return;
    }
    let user = Object.values(ctx.store.data.users).find((u) => u.clientId === clientId);
    if (!user) {
      user = { id: `anon_${randomBytes(8).toString('hex')}`, clientId, available: ctx.anonymousCredits, frozen: 0, spent: 0 };
      ctx.store.data.users[user.id] = user;
    }
    let token: string;
    let expiresAt: number;
    if (live && liveRecord && liveRecord.expiresAt > now) {
      token = live;
      expiresAt = liveRecord.expiresAt;
    } else {
      if (ctx.ipQuota !== undefined) {
        const ip = req.socket.remoteAddress ?? 'unknown';
        const recent = (ctx.tokensByIp.get(ip) ?? []).filter((t) => t > now - IP_QUOTA_WINDOW_MS);
        if (recent.length >= ctx.ipQuota) {
          sendCodeError(res, ctx.compat, 429, `at most ${ctx.ipQuota} anonymous tokens per IP address per 7 days; wait and retry`, { forceStatus: 429, headers: { 'retry-after': '30' } });
          return;
        }
        ctx.tokensByIp.set(ip, [...recent, now]);
      }
      // After expiry (or a restart, which forgets plain tokens) a new token for the same user.
      token = `nmv_usr_${randomBytes(24).toString('base64url')}`;
      expiresAt = now + ctx.tokenTtlMs;
      ctx.store.data.tokens[tokenHash(token)] = { userId: user.id, clientId, expiresAt };
      ctx.store.liveTokens.set(clientId, token);
      ctx.stats.tokensIssued += 1;
      await ctx.store.save({ users: user.id, tokens: tokenHash(token) });
    }
    ctx.emit({ type: 'token:issued', userId: user.id });
    sendOk(res, { token, user_id: user.id, credits: user.available, expires_at: new Date(expiresAt).toISOString() } satisfies AnonymousTokenData);
  },

  claim: async (ctx, req, res) => {
    const user = authenticate(ctx, req, res, 'claim');
    if (!user) return;
    const body = await readBody(req, readClaimTokenBody);
    const missing = 'no such task and session for this token; create a session first';
    const session = ownSession(ctx, res, 'claim', user, { sessionId: body.session_id, missing });
    if (!session) return;
    if (session.taskId !== body.task_id) {
      sendRouteError(res, ctx.compat, 'claim', ErrorCodes.sessionNotFound, missing);
      return;
    }
    sendOk(res, { claim_token: `clm_${randomBytes(18).toString('base64url')}`, expires_in: CLAIM_TOKEN_SECONDS } satisfies ClaimTokenData);
  },

  credits: async (ctx, req, res) => {
    const user = authenticate(ctx, req, res, 'credits');
    if (!user) return;
    sendOk(res, { available: user.available, frozen: user.frozen, total: user.available + user.frozen } satisfies CreditsData);
  },
};
