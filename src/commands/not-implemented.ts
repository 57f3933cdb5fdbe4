import { TalkError } from '../core/errors.js';

/** Placeholder for a command whose issue has not landed yet. */
export function notImplemented(command: string): never {
  throw new TalkError('usage', `\`talk ${command}\` is not available in this build yet`);
}
