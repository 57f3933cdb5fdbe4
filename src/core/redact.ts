/**
 * Secret redaction for every byte talk writes. One place, so "tokens never appear in any
 * output" has one thing to test. Claim tokens (`clm_…`) are not secrets: they cannot call
 * the API and are meant to be shown inside the browser link.
 */

const TOKEN_PATTERN = /nmv_usr_[A-Za-z0-9_\-.]+/g;
const BEARER_PATTERN = /(authorization["']?\s*[:=]\s*["']?)(bearer\s+)?[^\s"',}]+/gi;
const BEARER_ONLY = /\bBearer\s+[A-Za-z0-9_\-.~+/=]+/g;

export const REDACTED = '[redacted]';

/** Builds a redactor that also hides the given literal secrets (e.g. `NEMO_TOKEN`'s value). */
export function createRedactor(secrets: readonly (string | undefined)[] = []): (text: string) => string {
  const literals = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 6);
  return (text: string): string => {
    let out = text;
    for (const secret of literals) out = out.split(secret).join(REDACTED);
    return out
      .replace(TOKEN_PATTERN, REDACTED)
      .replace(BEARER_PATTERN, (_m, prefix: string) => `${prefix}${REDACTED}`)
      .replace(BEARER_ONLY, `Bearer ${REDACTED}`);
  };
}

/** A text sink (stdout or stderr) that redacts before writing. */
export interface OutputSink {
  write(text: string): void;
  /** True when the sink is an interactive terminal. */
  readonly isTTY: boolean;
  /** Terminal width in columns, when known. */
  readonly columns: number | undefined;
}
