/**
 * Request and response bodies of the protocol (CONTRACT §2). Request fields are snake_case
 * except the render body's `sessionId`; render responses are camelCase (§1.4).
 */
import type { Draft } from './draft.js';

/** Code envelope (§1.5 style 1). `message` may also be `msg`/`detail`/`error`. */
export interface CodeEnvelope<T> {
  code: number;
  data: T | null;
  message?: string;
  msg?: string;
  detail?: string;
}

/** Success envelope of the render proxy (§1.5 style 2). */
export interface SuccessEnvelope<T> {
  success: boolean;
  data?: T;
  error?: string;
}

/** §2.1 */
export interface AnonymousTokenData {
  token: string;
  user_id: string;
  credits: number;
  expires_at: string;
}

/** §2.2 */
export interface CreateSessionBody {
  task_name?: string;
  language?: string;
}
export interface CreateSessionData {
  task_id: string;
  session_id: string;
  user_id?: string;
}

/** §2.3 */
export interface ClaimTokenBody {
  task_id: string;
  session_id: string;
}
export interface ClaimTokenData {
  claim_token: string;
  expires_in: number;
}

/** §2.4 */
export interface RunSseBody {
  app_name: string;
  user_id?: string;
  session_id: string;
  new_message: { role?: string; parts: { text: string }[] };
  streaming?: boolean;
}

/** §2.5: one uploaded file as the backend describes it. */
export interface UploadedFile {
  filename: string;
  /** `video`, `image` or `audio` in practice; other values are tolerated. */
  file_type: string;
  cdn_url: string;
  duration?: number;
  width?: number;
  height?: number;
  fps?: number;
  hash?: string;
  size?: number;
}
export interface UploadData {
  files: UploadedFile[];
  session_state_applied: boolean;
}
/** §2.5 URL form. */
export interface UploadUrlBody {
  urls: string[];
  source_type: 'url';
}

/** §2.6 */
export interface CreditsData {
  available: number;
  frozen: number;
  total: number;
}

/** §2.7 */
export interface SessionStateData {
  session_id: string;
  task_id: string;
  task_name: string;
  state: {
    video_infos: UploadedFile[];
    /** Absent, null or `{}` before any generation (§7, Q14). */
    draft?: Draft | null | Record<string, never>;
    canvas_config?: { width?: number; height?: number; ratio?: string };
    video_analyses?: Record<string, unknown>;
    generated_media?: { type: string; url: string; duration?: number }[];
  };
}

/** Export options the client sends in the render body's `output` (SPEC §5). */
export interface RenderOutput {
  format: 'mp4';
  quality?: 'high' | 'medium' | 'low';
  resolution?: '720p' | '1080p';
  aspect?: '16:9' | '9:16' | '1:1';
}

/** §2.8 */
export interface RenderSubmitBody {
  id: string;
  sessionId: string;
  draft: unknown;
  output?: RenderOutput;
}

export type RenderStatusValue = 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';

/** §2.9, default shape (inside the success envelope). */
export interface RenderStatusData {
  id: string;
  /** One of `RenderStatusValue`; unknown values mean "keep polling". */
  status: string;
  progress: number;
  outputUrl?: string;
  createdAt?: number;
  completedAt?: number;
  error?: string;
}

/** §2.9, the top-level variant: `{status, progress, output: {url, duration, size}}`. */
export interface RenderStatusTopLevel {
  taskId?: string;
  id?: string;
  /** One of `RenderStatusValue`; unknown values mean "keep polling". */
  status: string;
  progress?: number;
  output?: { url?: string; duration?: number; size?: number };
  error?: string;
}
