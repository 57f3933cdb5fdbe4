/**
 * `unreachable(x)`: the exhaustiveness check of a `switch` over a union. The type system makes
 * the call impossible to reach; if a value arrives anyway (read from disk by an older or newer
 * version, say), it throws instead of handing the impossible value on.
 */
export function unreachable(value: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`);
}
