/**
 * Reading an append-only journal (one JSON object per line), the one rule both stores follow:
 * a torn last line is a crash mid-append — that change was never acknowledged, so it is
 * dropped — while a line that does not parse anywhere before the end means the file was
 * damaged, and replaying past it (or stopping at it) would silently lose every later change.
 */

/** A journal line before the end does not parse: the file was damaged. */
export class JournalDamagedError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    cause: unknown,
  ) {
    super(`${file}:${line}: damaged journal line (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
    this.name = 'JournalDamagedError';
  }
}

/** The entries of a journal's text, in order; throws `JournalDamagedError` for a damaged line. */
export function parseJournal(text: string, file: string): unknown[] {
  const lines = text.split('\n');
  const entries: unknown[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    if (!line) continue;
    try {
      entries.push(JSON.parse(line));
    } catch (error) {
      const last = lines.slice(i + 1).every((l) => l === '');
      if (!last) throw new JournalDamagedError(file, i + 1, error);
    }
  }
  return entries;
}
