// The run report in a real browser: a 3-item `foreach` run on the in-process local backend with
// one job failed by fault injection, then `report.html` opened from the file system in Debian's
// chromium (playwright-core, the system executable; never a downloaded browser). Also checks
// every provenance record the run wrote against schemas/provenance.schema.json.
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchForm } from '../integration/runner/rig.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { makeTestMedia, testTools } from '../helpers/media.js';
import { readRecord } from '../helpers/records.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
let dir: string;

// The test's tsconfig has no DOM library: the few element fields the page checks, typed here.
interface ImgLike {
  complete: boolean;
  naturalWidth: number;
  addEventListener(type: string, listener: () => void, options?: object): void;
}
interface VideoLike {
  readyState: number;
  duration: number;
  getAttribute(name: string): string | null;
  addEventListener(type: string, listener: () => void, options?: object): void;
}
interface ElementLike {
  getAttribute(name: string): string | null;
}

beforeAll(() => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'talk.js'))) execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build.mjs')], { stdio: 'ignore' });
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function probeDuration(file: string): number {
  const out = execFileSync(testTools().ffprobe, ['-v', 'error', '-show_entries', 'format=duration', '-of', 'default=nw=1:nk=1', file]).toString();
  return Number(out.trim());
}

/** Standard deviation of a screenshot's grey levels: 0 for a blank (single-colour) page. */
function greySpread(png: string): number {
  const raw = execFileSync(testTools().ffmpeg, ['-v', 'error', '-i', png, '-vf', 'scale=128:-1,format=gray', '-f', 'rawvideo', '-']);
  let sum = 0;
  for (const b of raw) sum += b;
  const mean = sum / raw.length;
  let sq = 0;
  for (const b of raw) sq += (b - mean) ** 2;
  return Math.sqrt(sq / raw.length);
}

describe('talk report (built CLI, real browser)', () => {
  it('a 3-item batch with one failure: records validate, the report shows 3 cards, failed first, frames, playable videos', async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`chromium not found at ${CHROMIUM}: install it with \`apt-get update && apt-get install -y chromium\` (or set CHROMIUM_PATH)`);
    }
    dir = await mkdtemp(path.join(tmpdir(), 'talk-e2e-report-'));
    const media = await makeTestMedia(path.join(tmpdir(), 'talk-test-media-report'));
    await mkdir(path.join(dir, 'faces'));
    await mkdir(path.join(dir, 'voices'));
    for (const stem of ['p00', 'p01', 'p02']) {
      await copyFile(media.portrait, path.join(dir, 'faces', `${stem}.jpg`));
      await copyFile(media.voice, path.join(dir, 'voices', `${stem}.mp3`));
    }
    await writeFile(
      path.join(dir, 'batch.yaml'),
      batchForm('review', 1, ['backend: local']),
    );
    // The first job's two uploads are refused (400 is not retried): it fails, the others run.
    const run = await runCli(['run', 'batch.yaml', '--json'], { cwd: dir, env: { TALK_LOCAL_FAULTS: 'upload:status=400:x2', TALK_LOCAL_ANONYMOUS_CREDITS: '1000' }, timeoutMs: 120_000 });
    expect(run.code, run.stderr).toBe(1);
    const out = path.join(dir, 'out');
    expect(existsSync(path.join(out, 'report.html'))).toBe(true);

    // Every record the run wrote validates, and none carries a token.
    const records = (await readdir(out)).filter((f) => f.endsWith('.talk.json')).sort();
    expect(records).toEqual(['p01.talk.json', 'p02.talk.json']);
    for (const name of records) {
      const record = await readRecord<{ video: { duration: number; width: number }; inputs: unknown[]; versions: { ffmpeg?: string }; instructions: { tools: string[] }[] }>(path.join(out, name));
      expect(record.inputs).toHaveLength(2);
      expect(record.video.width).toBeGreaterThan(0);
      expect(record.versions.ffmpeg).toMatch(/^ffmpeg version/);
    }

    // The report, again, from `talk report` (it writes the same page the run wrote).
    const again = await runCli(['report', 'batch.yaml'], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('report: out/report.html');

    const profile = path.join(dir, 'chromium-profile');
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 900 },
    });
    try {
      const page = await context.newPage();
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(pathToFileURL(path.join(out, 'report.html')).href, { waitUntil: 'load' });
      expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);
      const cards = page.locator('.card');
      expect(await cards.count()).toBe(3);
      expect(await cards.evaluateAll((els) => (els as unknown as ElementLike[]).map((e) => e.getAttribute('data-status')))).toEqual(['failed', 'done', 'done']);
      expect(await cards.first().getAttribute('data-job')).toBe('p00');
      expect(await page.locator('.card.failed .error').textContent()).toContain('400');

      const widths = await page.locator('img.thumb').evaluateAll((imgs) =>
        Promise.all((imgs as unknown as ImgLike[]).map((img) => (img.complete ? Promise.resolve(img.naturalWidth) : new Promise<number>((r) => img.addEventListener('load', () => r(img.naturalWidth), { once: true }))))),
      );
      expect(widths).toHaveLength(4);
      for (const w of widths) expect(w).toBeGreaterThan(0);

      const videos = await page.locator('video').evaluateAll((vs) =>
        Promise.all(
          (vs as unknown as VideoLike[]).map((v) =>
            v.readyState >= 1 && Number.isFinite(v.duration)
              ? Promise.resolve({ src: v.getAttribute('src') ?? '', duration: v.duration })
              : new Promise<{ src: string; duration: number }>((r) => v.addEventListener('loadedmetadata', () => r({ src: v.getAttribute('src') ?? '', duration: v.duration }), { once: true })),
          ),
        ),
      );
      expect(videos).toHaveLength(2);
      for (const v of videos) expect(Math.abs(v.duration - probeDuration(path.join(out, decodeURIComponent(v.src))))).toBeLessThan(0.1);

      const shot = path.join(dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(greySpread(shot)).toBeGreaterThan(5);

      await page.locator('#failed-only').check();
      expect(await page.locator('.card:visible').count()).toBe(1);
      expect(await page.locator('.card:visible').getAttribute('data-job')).toBe('p00');
      if (process.env['TALK_KEEP_SCREENSHOT']) await copyFile(shot, process.env['TALK_KEEP_SCREENSHOT']);
    } finally {
      await context.close();
    }
  }, 180_000);
});
