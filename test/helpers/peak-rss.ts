import { readFileSync } from 'node:fs';

/**
 * This process's own peak RSS, in bytes: on Linux, VmHWM from /proc/self/status, the high-water
 * mark of this program since it started. `process.resourceUsage().maxRSS` does not do for a
 * child process: Linux carries the parent's RSS at the fork across exec into the child's
 * maximum, so the child of a 250 MB parent reports at least 250 MB however little it uses.
 * Elsewhere, `maxRSS` is the best there is.
 */
export function ownPeakRss(): number {
  let status = '';
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    // Not Linux.
  }
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  return kb === undefined ? process.resourceUsage().maxRSS * 1024 : Number(kb) * 1024;
}
