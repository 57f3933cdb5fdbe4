/**
 * The preamble of every protected route, once: who the bearer token belongs to (else 1001),
 * and, where the route names a session, that the caller owns it (else 1002). Each answers in
 * the route's own error shape and returns undefined once it has answered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCodes } from '../contract/codes.js';
import { ME, type RouteName } from '../contract/routes.js';
import type { ServerContext } from './context.js';
import { requestHeader, sendRouteError } from './http.js';
import { tokenHash, type SessionRecord, type UserRecord } from './store.js';

/** Where a request names its session. */
export interface SessionRef {
  /** The user slot of the path or body: `me`, absent, or the caller's own id (CONTRACT §1.2). */
  userSlot?: string | undefined;
  /** The session id as sent: anything but the id of a session the caller owns is 1002. */
  sessionId: unknown;
  /** What the 1002 says. */
  missing: string;
}

/** The caller, and the session the request is about. */
export interface SessionCaller {
  user: UserRecord;
  session: SessionRecord;
}

/** The user behind the bearer token, or undefined after answering 1001. */
export function authenticate(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, route: RouteName): UserRecord | undefined {
  const token = /^Bearer\s+(\S+)$/i.exec(requestHeader(req, 'authorization') ?? '')?.[1];
  const record = token ? ctx.store.data.tokens[tokenHash(token)] : undefined;
  const user = record ? ctx.store.data.users[record.userId] : undefined;
  if (!token || !record || !user) {
    sendRouteError(res, ctx.compat, route, ErrorCodes.tokenInvalid, 'the token is missing or invalid; request a new one with POST /api/auth/anonymous-token');
    return undefined;
  }
  if (record.expiresAt <= ctx.clock.now()) {
    sendRouteError(res, ctx.compat, route, ErrorCodes.tokenInvalid, 'the token has expired; request a new one with the same X-Client-Id');
    return undefined;
  }
  return user;
}

/** Whether a path's or body's user slot names the caller: `me`, absent, or their own id. */
export function isOwnSlot(user: UserRecord, userSlot: string | undefined): boolean {
  return userSlot === undefined || userSlot === ME || userSlot === user.id;
}

/** The session `ref` names, if `user` owns it; else undefined after answering 1002. */
export function ownSession(ctx: ServerContext, res: ServerResponse, route: RouteName, user: UserRecord, ref: SessionRef): SessionRecord | undefined {
  const session = isOwnSlot(user, ref.userSlot) && typeof ref.sessionId === 'string' ? ctx.store.data.sessions[ref.sessionId] : undefined;
  if (session && session.userId === user.id) return session;
  sendRouteError(res, ctx.compat, route, ErrorCodes.sessionNotFound, ref.missing);
  return undefined;
}

/**
 * The whole preamble of a route whose path names the session: the caller (1001), then the
 * session it owns (1002). Routes that name the session in their body call `authenticate`, read
 * the body, then `ownSession`, so a request with a bad token is refused before its body is read;
 * routes about the caller alone call `authenticate`.
 */
export function guard(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, route: RouteName, ref: SessionRef): SessionCaller | undefined {
  const user = authenticate(ctx, req, res, route);
  const session = user && ownSession(ctx, res, route, user, ref);
  return user && session ? { user, session } : undefined;
}
