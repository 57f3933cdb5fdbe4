/**
 * A suffix for a temp file's name, unique across processes and calls without node:crypto
 * (loading it costs `talk validate` ≈ 2 ms of its start-up, bench/notes/validate.md): the
 * time, a per-process random part and a counter. Temp names only need to avoid each other;
 * nothing secret depends on them.
 */
const processPart = Math.floor(Math.random() * 36 ** 8).toString(36).padStart(8, '0');
let counter = 0;

export function tempSuffix(): string {
  counter += 1;
  return `${Date.now().toString(36)}${processPart}${counter.toString(36)}`;
}
