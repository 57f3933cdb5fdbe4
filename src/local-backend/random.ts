/**
 * A small seeded generator (mulberry32), so `--seed` makes random faults and silent edits
 * repeatable. Not for anything secret: ids and tokens use `node:crypto`.
 */

/** Returns numbers in [0, 1); the same seed gives the same sequence. */
export type Random = () => number;

export function createRandom(seed: number | undefined): Random {
  if (seed === undefined) return Math.random;
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
