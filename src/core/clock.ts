/**
 * Time as an edge: the runner, the watcher, the local backend and the token provider read it
 * through a `Clock`, so tests of expiry, settle windows and shutdown can move it by hand.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
