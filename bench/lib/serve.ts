// `talk serve` in a child process for benchmarks: the backend on its own event loop, as the real
// service is, configured through the TALK_LOCAL_* knobs.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LocalStats } from '../../src/local-backend/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const REQUEST_LINE = /^\w+ \S+ \d+ \d+ms \[/;

export interface ServeProcess {
  url: string;
  pid: number;
  /** Its counters (`GET /__local/stats`). */
  stats(): Promise<LocalStats>;
  close(): Promise<void>;
}

/**
 * Start `talk serve --data-dir <dir>` with the given knobs; resolves once it listens. Its request
 * log lines go to `onRequestLine` (dropped when there is none); anything else it prints on
 * stderr is passed on.
 */
export async function serveProcess(dataDir: string, knobs: Record<string, string>, onRequestLine?: (line: string) => void): Promise<ServeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src', 'main.ts'), 'serve', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...knobs },
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    if (REQUEST_LINE.test(line)) onRequestLine?.(line);
    else process.stderr.write(`${line}\n`);
  });
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      seen += d;
      const m = /listening on (\S+)/.exec(seen);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', () => reject(new Error('talk serve exited')));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A bench that fails half-way must not leave its backend running.
  const orphaned = (): void => void child.kill('SIGTERM');
  process.once('exit', orphaned);
  return {
    url,
    pid: child.pid ?? 0,
    stats: async () => (await (await fetch(`${url}/__local/stats`)).json()) as LocalStats,
    close: async () => {
      process.off('exit', orphaned);
      child.kill('SIGTERM');
      await exited;
    },
  };
}
