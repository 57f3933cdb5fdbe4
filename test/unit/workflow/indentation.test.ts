// The line whose indentation is wrong, named where the parser points elsewhere: a line too
// deep under a key that has its value (reported by yaml on the line above), a line dedented to
// no open level, the line after a block scalar's text. And no slip in well-indented files.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findIndentationSlip } from '../../../src/workflow/indentation.js';
import { REPO_ROOT } from '../../helpers/cli.js';

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

describe('findIndentationSlip', () => {
  it('names the too-deep line after a key with its value, from the line yaml reports', () => {
    const text = lines('version: 1', 'export:', '  quality: low', '    resolution: 720p');
    expect(findIndentationSlip(text, 3)).toEqual({
      line: 4,
      indent: 4,
      message: 'line 4 is indented deeper (4 spaces) than line 3 above it allows',
      hint: 'line 3 (`quality: low`) already has its value, so line 4 cannot go inside it: indent it 2 spaces to stand beside it, or shallower',
    });
  });

  it('lines a key up with the keys of its list item', () => {
    const text = lines('inputs:', '  - portrait: a.jpg', '   voice: b.mp3');
    expect(findIndentationSlip(text, 3)?.hint).toContain('indent it 4 spaces');
  });

  it('names a dedent that lines up with nothing, with the levels that are open', () => {
    const text = lines('instructions:', '  - a', ' - b');
    expect(findIndentationSlip(text, 3)).toMatchObject({ line: 3, indent: 1, hint: 'indent it 0 spaces or 2 spaces, to line up with the mapping or list it belongs to' });
  });

  it("takes a block scalar's text as text at any depth, and checks the line after it", () => {
    const text = lines('instructions:', '  - |', '    Make this photo talk', '      and loop it', '   - Add music');
    expect(findIndentationSlip(text, 3)).toMatchObject({ line: 5, indent: 3 });
    expect(findIndentationSlip(lines('a: |', '  text', '    deeper text', 'b: 1'), 2)).toBeUndefined();
  });

  it('finds no slip on any line of the examples and of the fixtures that parse as YAML', () => {
    const invalid = path.join(REPO_ROOT, 'test', 'fixtures', 'workflows', 'invalid');
    const parses = (f: string): boolean => !readFileSync(path.join(invalid, f.replace(/\.yaml$/, '.expected')), 'utf8').includes(' YAML: ');
    const files = [
      ...readdirSync(path.join(REPO_ROOT, 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => path.join(REPO_ROOT, 'examples', f)),
      ...readdirSync(invalid).filter((f) => f.endsWith('.yaml') && parses(f)).map((f) => path.join(invalid, f)),
    ];
    expect(files.length).toBeGreaterThan(30);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const count = text.split('\n').length;
      for (let line = 1; line <= count; line += 1) expect(findIndentationSlip(text, line), `${path.basename(file)}:${line}`).toBeUndefined();
    }
  });
});
