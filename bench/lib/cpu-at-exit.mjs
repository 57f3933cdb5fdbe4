// Preloaded into a benchmarked CLI process (`node --import <this file> bin/talk.js …`): at exit it
// appends the process's own CPU time to the file named by TALK_BENCH_CPU_FILE, one JSON line
// `{ pid, role, cpuMs }`. Node offers a child's CPU time nowhere else, and a process that ends on
// SIGTERM (a worker) still runs its exit handlers.
import { appendFileSync } from 'node:fs';

const file = process.env.TALK_BENCH_CPU_FILE;
if (file) {
  process.on('exit', () => {
    const { user, system } = process.cpuUsage();
    appendFileSync(file, `${JSON.stringify({ pid: process.pid, role: process.env.TALK_BENCH_ROLE ?? '', cpuMs: (user + system) / 1000 })}\n`);
  });
}
