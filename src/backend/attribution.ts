/**
 * The attribution headers every request carries (CONTRACT §1.3). Without them the cloud
 * refuses exports for anonymous users with HTTP 402, so they are not optional decoration.
 */
import { DEFAULT_SKILL_PLATFORM, DEFAULT_SKILL_SOURCE } from '../contract/routes.js';

/** The three values sent as `X-Skill-Source`, `X-Skill-Version`, `X-Skill-Platform`. */
export interface Attribution {
  source: string;
  version: string;
  platform: string;
}

/**
 * Where talk runs, as the skill reports it: from the install path (the seed's rule:
 * `~/.clawhub/` → clawhub, `~/.cursor/skills/` → cursor), else from the environment of the
 * editor agents the official CLI recognises, else `unknown`.
 */
export function detectPlatform(env: Readonly<Record<string, string | undefined>>, installPath = ''): string {
  const p = installPath.replace(/\\/g, '/');
  if (p.includes('/.clawhub/')) return 'clawhub';
  if (p.includes('/.cursor/skills/')) return 'cursor';
  if (env.CLAUDECODE === '1') return 'claude_code';
  if (env.CURSOR_TRACE_ID !== undefined || env.TERM_PROGRAM === 'cursor') return 'cursor';
  return DEFAULT_SKILL_PLATFORM;
}

/**
 * Attribution from explicit values (flags), then the environment (`SKILL_SOURCE`, which the
 * skill reads, and `SKILL_PLATFORM`), then the seed's defaults.
 */
export function resolveAttribution(
  explicit: Partial<Attribution> | undefined,
  env: Readonly<Record<string, string | undefined>> = {},
  installPath = '',
): Attribution {
  const pick = (...values: (string | undefined)[]): string | undefined => values.find((v) => v !== undefined && v.trim() !== '')?.trim();
  return {
    source: pick(explicit?.source, env.SKILL_SOURCE) ?? DEFAULT_SKILL_SOURCE,
    version: pick(explicit?.version) ?? '0.0.0',
    platform: pick(explicit?.platform, env.SKILL_PLATFORM) ?? detectPlatform(env, installPath),
  };
}

/** The headers themselves. */
export function attributionHeaders(a: Attribution): Record<string, string> {
  return { 'x-skill-source': a.source, 'x-skill-version': a.version, 'x-skill-platform': a.platform };
}
