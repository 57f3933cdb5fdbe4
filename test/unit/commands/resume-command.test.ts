import { describe, expect, it } from 'vitest';
import { resumeCommand } from '../../../src/commands/resume-command.js';
import { shellQuote } from '../../../src/core/shell-quote.js';

describe('resumeCommand', () => {
  it('repeats what decides the state, the backend and the steps; nothing else', () => {
    expect(resumeCommand(['run', 'hello.yaml'], { backend: undefined, stateDir: undefined, vars: {} })).toBe('talk run hello.yaml');
    expect(resumeCommand(['run', 'flows/hello.yaml'], { backend: 'http://127.0.0.1:8787', stateDir: 'my state', vars: { who: "Ann's", n: '2' } })).toBe(
      "talk run flows/hello.yaml --backend http://127.0.0.1:8787 --state-dir 'my state' --var 'who=Ann'\\''s' --var n=2",
    );
    expect(resumeCommand(['watch', 'in box', '--workflow', 'watch.yaml'], { backend: 'local', stateDir: undefined, vars: {} })).toBe("talk watch 'in box' --workflow watch.yaml --backend local");
  });

  it('quotes only what a shell would split or expand', () => {
    expect(shellQuote('a/b-c_d.yaml')).toBe('a/b-c_d.yaml');
    expect(shellQuote('$HOME')).toBe("'$HOME'");
    expect(shellQuote('')).toBe("''");
  });
});
