/**
 * Finding the line whose indentation is wrong. The YAML parser reports an indentation slip
 * where the damage shows, which is often not where it is: a line indented too deep becomes
 * part of the value above (reported on that line, as a `:` in a value), a line dedented to a
 * level nothing above opens is reported as a key problem. Given the line the parser named,
 * this looks at it and the next line, and names the one that fits none of the levels the lines
 * above it open, with the indentation it could have.
 */

/** A line that is indented wrongly: 1-based line, how deep it is and what would fit. */
export interface IndentationSlip {
  line: number;
  indent: number;
  message: string;
  hint: string;
}

interface Line {
  /** 1-based. */
  number: number;
  indent: number;
  /** Where the keys of a `- key: value` item line up; else `indent`. */
  inner: number;
  /** The line ends with `key:` (or `-`): the next line may go deeper. */
  opens: boolean;
  /** A block scalar (`|`, `>`) starts here: the deeper lines after it are its text. */
  blockScalar: boolean;
  text: string;
}

function readLine(text: string, number: number): Line | undefined {
  const stripped = text.replace(/\s+#.*$/, '').trimEnd();
  const body = stripped.trimStart();
  if (body === '' || body.startsWith('#')) return undefined;
  const indent = stripped.length - body.length;
  const dash = /^-(\s+|$)/.exec(body);
  // `- key: value` (or `- key:`) starts a mapping whose next keys line up after the dash.
  const itemMap = dash !== null && /^[^\s#'"[{][^:]*:(\s|$)/.test(body.slice(dash[0].length));
  const inner = dash && itemMap ? indent + dash[0].length : indent;
  const blockScalar = /:\s*[|>][-+0-9]*$/.test(body) || /^-\s+[|>][-+0-9]*$/.test(body);
  // A block scalar's deeper lines are its text, left out of the comparison: it opens nothing.
  const opens = !blockScalar && (body.endsWith(':') || body === '-');
  return { number, indent, inner, opens, blockScalar, text: body };
}

const spaces = (n: number): string => `${n} space${n === 1 ? '' : 's'}`;
const levels = (list: number[]): string => list.map(spaces).join(', ').replace(/, ([^,]*)$/, ' or $1');

/** The slip at or just after `line` (1-based) of `text`, if the indentation shows one. */
export function findIndentationSlip(text: string, line: number): IndentationSlip | undefined {
  const all = text.split(/\r?\n/);
  const lines: Line[] = [];
  // A block scalar's text lines are text at any depth: left out, so the line after the text
  // is compared with the line that opened it.
  // Its text is the lines at least as deep as its first line, which is deeper than the header.
  let header: number | undefined;
  let textIndent: number | undefined;
  for (let i = 0; i < all.length; i += 1) {
    const parsed = readLine(all[i]!, i + 1);
    if (!parsed) continue;
    if (header !== undefined) {
      textIndent ??= parsed.indent > header ? parsed.indent : undefined;
      if (textIndent !== undefined && parsed.indent >= textIndent) continue;
    }
    header = parsed.blockScalar ? parsed.indent : undefined;
    textIndent = undefined;
    lines.push(parsed);
  }
  const at = lines.findIndex((l) => l.number >= line);
  if (at < 0) return undefined;
  // The named line, then the one after it (a too-deep line is reported on the line above).
  for (const index of [at, at + 1]) {
    const slip = slipAt(lines, index);
    if (slip) return slip;
  }
  return undefined;
}

function slipAt(lines: readonly Line[], index: number): IndentationSlip | undefined {
  const here = lines[index];
  const above = lines[index - 1];
  if (!here || !above) return undefined;
  if (here.indent > above.indent) {
    if (above.opens || here.indent === above.inner) return undefined;
    const fits = above.inner;
    return {
      line: here.number,
      indent: here.indent,
      message: `line ${here.number} is indented deeper (${spaces(here.indent)}) than line ${above.number} above it allows`,
      hint: `line ${above.number} (\`${above.text}\`) already has its value, so line ${here.number} cannot go inside it: indent it ${spaces(fits)} to stand beside it, or shallower`,
    };
  }
  if (here.indent === above.indent || here.indent === above.inner) return undefined;
  // Dedented: it must line up with a level that an enclosing line opens.
  const open = new Set<number>([above.indent, above.inner]);
  let min = above.indent;
  for (let i = index - 2; i >= 0 && min > 0; i -= 1) {
    const l = lines[i]!;
    if (l.indent < min) {
      open.add(l.indent);
      open.add(l.inner);
      min = l.indent;
    }
  }
  open.add(0);
  if (open.has(here.indent)) return undefined;
  const choices = [...open].filter((n) => n <= above.inner).sort((a, b) => a - b);
  return {
    line: here.number,
    indent: here.indent,
    message: `line ${here.number} is indented ${spaces(here.indent)}, which lines up with no line above it`,
    hint: `indent it ${levels(choices)}, to line up with the mapping or list it belongs to`,
  };
}
