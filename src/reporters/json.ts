/**
 * The `json` reporter: SPEC §1 NDJSON, one event per line on stdout and nothing else there.
 * Events are written as they are (extra optional fields included); the redactor still runs
 * over each line, so a token that slipped into a message never leaves the process.
 */
import type { TalkEvent } from '../core/events.js';
import type { OutputSink } from '../core/redact.js';

/** Serialises one event as one NDJSON line. */
export function formatJsonLine(event: TalkEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/** Writes each event as a line to `out`. */
export class JsonWriter {
  constructor(private readonly out: OutputSink) {}

  emit(event: TalkEvent): void {
    this.out.write(formatJsonLine(event));
  }
}
