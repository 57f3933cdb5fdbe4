/**
 * Stage 1 of loading: read the file safely and parse it as YAML with positions.
 *
 * Every way a file can be unusable ends in a located diagnostic, never an exception: missing,
 * unreadable, a folder, too big, empty, not UTF-8, not YAML, an alias bomb, several documents.
 */
import { LineCounter, isMap, isPair, isScalar, isSeq, parseAllDocuments, type Document, type Node } from 'yaml';
import { makeDiagnostic, type Diagnostic, type Severity, type SourceSpan } from '../core/diagnostics.js';
import type { WorkflowFs } from './fs.js';
import { findIndentationSlip } from './indentation.js';

/** Workflow files list media by path; anything this big is a mistake (or an attack). */
export const MAX_WORKFLOW_BYTES = 1024 * 1024;
/** Aliases a workflow may expand. Enough for anchors of shared options; far below a bomb. */
export const MAX_ALIAS_COUNT = 100;

/** A key or index in the parsed document, as in a JSON pointer. */
export type DocPath = readonly (string | number)[];

/** What the file holds once stage 1 passed: its text, the YAML document and its plain value. */
export interface ParsedSource {
  source: YamlSource;
  data: unknown;
}

/**
 * The text and YAML document of one workflow file, with helpers that turn document paths and
 * offsets into located diagnostics.
 */
export class YamlSource {
  private readonly lines: string[];

  constructor(
    readonly displayFile: string,
    readonly text: string,
    readonly doc: Document.Parsed | undefined,
    private readonly lineCounter: LineCounter,
  ) {
    this.lines = text.split(/\r?\n/);
  }

  /** The span of `[start, end)` offsets; the end is clipped to the start line for underlining. */
  spanOfRange(start: number, end = start + 1): SourceSpan & { sourceLine?: string } {
    const from = this.lineCounter.linePos(Math.max(0, Math.min(start, this.text.length)));
    const to = this.lineCounter.linePos(Math.max(start, Math.min(end, this.text.length)));
    const sourceLine = this.lines[from.line - 1];
    const span: SourceSpan & { sourceLine?: string } = { file: this.displayFile, line: from.line, col: from.col };
    if (to.line === from.line && to.col > from.col) {
      span.endLine = to.line;
      span.endCol = to.col;
    } else if (sourceLine !== undefined && sourceLine.length + 1 > from.col) {
      span.endLine = from.line;
      span.endCol = sourceLine.trimEnd().length + 1;
    }
    if (sourceLine !== undefined) span.sourceLine = sourceLine;
    return span;
  }

  /** The value node at `path` (and its key node, when it is a map entry). */
  nodeAt(path: DocPath): { node: Node | undefined; key: Node | undefined; found: boolean } {
    let node: unknown = this.doc?.contents ?? undefined;
    let key: Node | undefined;
    for (const segment of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
        if (!pair) return { node: node, key, found: false };
        key = pair.key as Node;
        node = pair.value ?? undefined;
        if (node === undefined) return { node: undefined, key, found: true };
      } else if (isSeq(node)) {
        const item: unknown = node.items[Number(segment)];
        if (item === undefined) return { node: node, key, found: false };
        key = undefined;
        node = item;
      } else {
        return { node: (node ?? undefined) as Node | undefined, key, found: false };
      }
    }
    return { node: (node ?? undefined) as Node | undefined, key, found: true };
  }

  /** Span of the value at `path` (or its key with `which: 'key'`), falling back to the nearest ancestor. */
  spanAt(path: DocPath, which: 'value' | 'key' = 'value'): SourceSpan & { sourceLine?: string } {
    const { node, key } = this.nodeAt(path);
    const target = which === 'key' ? (key ?? node) : (node ?? key);
    const range = target?.range;
    if (!range) return this.spanOfRange(0, 0);
    return this.spanOfRange(range[0], range[1]);
  }

  /** Span of the key `name` inside the map at `path` (for unknown keys). */
  spanOfKey(path: DocPath, name: string): SourceSpan & { sourceLine?: string } {
    return this.spanAt([...path, name], 'key');
  }

  /**
   * Span of a piece of a string value: `needle` (text inside the value, e.g. an expression),
   * its `occurrence`-th appearance. Found in the raw source so quoting does not shift it.
   */
  spanInString(path: DocPath, needle: string, occurrence: number): SourceSpan & { sourceLine?: string } {
    const { node } = this.nodeAt(path);
    const range = node?.range;
    if (!range) return this.spanAt(path);
    const raw = this.text.slice(range[0], range[1]);
    let index = -1;
    for (let i = 0; i <= occurrence; i += 1) {
      index = raw.indexOf(needle, index + 1);
      if (index < 0) break;
    }
    if (index < 0) return this.spanOfRange(range[0], range[1]);
    return this.spanOfRange(range[0] + index, range[0] + index + needle.length);
  }

  /** A located diagnostic. */
  diagnostic(span: SourceSpan & { sourceLine?: string }, severity: Severity, message: string, hint?: string): Diagnostic {
    return makeDiagnostic(span, severity, message, hint);
  }
}

function fileLevel(displayFile: string, message: string, hint?: string, at?: { line: number; col: number; sourceLine?: string }): Diagnostic {
  const span = { file: displayFile, line: at?.line ?? 1, col: at?.col ?? 1, ...(at?.sourceLine === undefined ? {} : { sourceLine: at.sourceLine }) };
  return makeDiagnostic(span, 'error', message, hint);
}

function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function describeReadError(error: unknown): { message: string; hint: string } {
  switch (errnoCode(error)) {
    case 'ENOENT':
    case 'ENOTDIR':
      return { message: 'cannot read the workflow: no such file', hint: 'check the path, or write a starter with `talk init <file>`' };
    case 'EACCES':
    case 'EPERM':
      return { message: 'cannot read the workflow: permission denied', hint: 'make the file readable (e.g. chmod a+r) or run talk as a user who can read it' };
    case 'EISDIR':
      return { message: 'this is a folder, not a workflow file', hint: 'name the YAML file inside it, e.g. folder/workflow.yaml' };
    default: {
      const detail = error instanceof Error ? error.message : String(error);
      return { message: `cannot read the workflow: ${detail}`, hint: 'check that the file exists and is readable' };
    }
  }
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MB` : `${Math.ceil(n / 1024)} KB`;
}

/** Line and column (1-based) of byte `index` in `bytes`, counting characters before it. */
function positionOfByte(bytes: Uint8Array, index: number): { line: number; col: number } {
  const before = new TextDecoder('utf-8').decode(bytes.subarray(0, index));
  const lines = before.split('\n');
  return { line: lines.length, col: (lines[lines.length - 1] ?? '').length + 1 };
}

/** Index of the first byte that is not valid UTF-8 (the decoder is told to fail on it). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  // Binary search on prefixes: a prefix decodes iff it ends before the first bad byte
  // (a prefix cut inside a valid multi-byte character also fails, which only moves us left).
  let lo = 0;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try {
      decoder.decode(bytes.subarray(0, mid));
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  return lo;
}

/** Read `file` and parse it into one YAML document with positions. */
export async function readWorkflowSource(
  file: string,
  displayFile: string,
  fs: WorkflowFs,
  signal?: AbortSignal,
): Promise<{ parsed: ParsedSource; diagnostics: Diagnostic[] } | { parsed: undefined; diagnostics: Diagnostic[] }> {
  let bytes: Uint8Array;
  try {
    const info = await fs.stat(file);
    if (info.isDirectory()) {
      return { parsed: undefined, diagnostics: [fileLevel(displayFile, 'this is a folder, not a workflow file', 'name the YAML file inside it, e.g. folder/workflow.yaml')] };
    }
    if (info.size > MAX_WORKFLOW_BYTES) {
      return {
        parsed: undefined,
        diagnostics: [
          fileLevel(
            displayFile,
            `the file is ${formatBytes(info.size)}; a workflow file may be at most ${formatBytes(MAX_WORKFLOW_BYTES)}`,
            'a workflow names its media by path; keep the media in their own files',
          ),
        ],
      };
    }
    bytes = await fs.readFile(file, signal);
  } catch (error) {
    signal?.throwIfAborted();
    const { message, hint } = describeReadError(error);
    return { parsed: undefined, diagnostics: [fileLevel(displayFile, message, hint)] };
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = positionOfByte(bytes, firstInvalidUtf8(bytes));
    return {
      parsed: undefined,
      diagnostics: [fileLevel(displayFile, 'the file is not valid UTF-8 text', 'save it as UTF-8 (most editors offer this under "encoding")', at)],
    };
  }
  // TextDecoder already drops a leading BOM.

  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const empty = new YamlSource(displayFile, text, undefined, lineCounter);
  const list = Array.isArray(docs) ? docs : [];
  const first = list[0];
  if (!first || (first.contents === null && first.errors.length === 0)) {
    return {
      parsed: undefined,
      diagnostics: [fileLevel(displayFile, 'the file is empty: there is no workflow in it', 'write one with `talk init <file>`, or see examples/hello.yaml')],
    };
  }
  const source = new YamlSource(displayFile, text, first, lineCounter);
  const diagnostics: Diagnostic[] = [];
  if (list.length > 1) {
    const second = list[1];
    const at = empty.spanOfRange(second?.range[0] ?? 0);
    diagnostics.push(
      source.diagnostic(at, 'error', `the file holds ${list.length} YAML documents; a workflow file holds exactly one`, 'remove the `---` separator, or put each workflow in its own file'),
    );
  }
  for (const doc of list.slice(0, 1)) {
    const erroredAt = new Set<number>();
    const slips = new Set<number>();
    for (const error of doc.errors) {
      const [start, end] = error.pos;
      // yaml often reports one slip twice at the same place; the first says it best.
      if (erroredAt.has(start)) continue;
      erroredAt.add(start);
      // An indentation slip is told once, on the line that is indented wrongly.
      const slip = INDENTATION_CODES.has(error.code) ? findIndentationSlip(text, lineCounter.linePos(start).line) : undefined;
      if (slip) {
        if (slips.has(slip.line)) continue;
        slips.add(slip.line);
        const lineStart = (lineCounter.lineStarts[slip.line - 1] ?? 0) + slip.indent;
        diagnostics.push(source.diagnostic(source.spanOfRange(lineStart), 'error', `YAML: ${slip.message}`, slip.hint));
        continue;
      }
      diagnostics.push(source.diagnostic(source.spanOfRange(start, end), 'error', `YAML: ${firstLine(error.message)}`, yamlHint(error.code)));
    }
    for (const warning of doc.warnings) {
      const [start, end] = warning.pos;
      diagnostics.push(source.diagnostic(source.spanOfRange(start, end), 'warning', `YAML: ${firstLine(warning.message)}`));
    }
  }
  if (diagnostics.some((d) => d.severity === 'error')) return { parsed: undefined, diagnostics };

  let data: unknown;
  try {
    data = first.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const isAliasBomb = /alias/i.test(message);
    diagnostics.push(
      fileLevel(
        displayFile,
        isAliasBomb ? `the file expands too many YAML aliases (more than ${MAX_ALIAS_COUNT}); refusing to load it` : `YAML: ${firstLine(message)}`,
        isAliasBomb ? 'write the values out, or use fewer anchors and aliases' : 'check the YAML syntax near the start of the file',
      ),
    );
    return { parsed: undefined, diagnostics };
  }
  return { parsed: { source, data }, diagnostics };
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '').trim();
}

/** Parser errors an indentation slip shows up as (the line named is not always the slip). */
const INDENTATION_CODES = new Set<string>(['BAD_INDENT', 'MISSING_CHAR', 'UNEXPECTED_TOKEN', 'BLOCK_AS_IMPLICIT_KEY', 'MULTILINE_IMPLICIT_KEY']);

function yamlHint(code: string): string | undefined {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'each key may appear once in a mapping; remove or rename one';
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
    case 'UNEXPECTED_TOKEN':
      return 'check the indentation and punctuation on this line';
    case 'TAB_AS_INDENT':
      return 'YAML indents with spaces, not tabs';
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY':
      return 'a key must fit on one line; a `:` inside a value needs quotes';
    default:
      return undefined;
  }
}
