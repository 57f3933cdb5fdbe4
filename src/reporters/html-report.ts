/**
 * The run report `report.html`: one self-contained page (inline style and script, no network,
 * opens from the file system) with the run's outcome and one card per job, failed first.
 * Pure: it turns a `ReportModel` into text; `talk report` gathers the model and the frames.
 */

/** How a job stands in the report. */
export type ReportJobStatus =
  /** Every step done, the video verified. */
  | 'done'
  /** A step failed (or the job was stopped by credits). */
  | 'failed'
  /** Started but not finished (interrupted; resumable). */
  | 'unfinished'
  /** Never started (not run yet, or not admitted). */
  | 'not-started';

/** One job's card. Hrefs are relative to the report. */
export interface ReportJob {
  id: string;
  status: ReportJobStatus;
  video?: string;
  poster?: string;
  strip?: string;
  record?: string;
  /** Seconds. */
  duration?: number;
  width?: number;
  height?: number;
  credits: number;
  instructions: { text: string; reply?: string }[];
  error?: { code: string; message: string; hint?: string; step?: string };
}

/** Everything the page shows. */
export interface ReportModel {
  name: string;
  workflow: string;
  generatedAt: string;
  startedAt?: string;
  wallTimeMs?: number;
  credits: number;
  jobs: ReportJob[];
}

const ORDER: Record<ReportJobStatus, number> = { failed: 0, unfinished: 1, 'not-started': 2, done: 3 };

/** Failed first, then unfinished, not started, done; plan order within each. */
export function orderJobs(jobs: readonly ReportJob[]): ReportJob[] {
  return jobs.map((job, i) => ({ job, i })).sort((a, b) => ORDER[a.job.status] - ORDER[b.job.status] || a.i - b.i).map((x) => x.job);
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A relative href, each segment escaped (file names may hold `#`, `?` or spaces). */
function href(rel: string): string {
  return esc(rel.split('/').map(encodeURIComponent).join('/'));
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

const STYLE = `
:root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#5b6475;--bad:#c62828;--ok:#2e7d32;--warn:#b26a00;--line:#dde1e8}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--card:#1d2128;--ink:#e7eaf0;--mute:#9aa3b2;--line:#2d333d}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--ink)}
header{padding:20px 24px;border-bottom:1px solid var(--line);background:var(--card)}
h1{margin:0 0 6px;font-size:22px}.meta{color:var(--mute);font-size:13px}
.totals{display:flex;flex-wrap:wrap;gap:18px;margin-top:12px}.totals b{font-size:20px;display:block}
.controls{padding:12px 24px}main{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:16px;padding:0 24px 24px}
.card{background:var(--card);border:1px solid var(--line);border-left:6px solid var(--ok);border-radius:8px;padding:14px;overflow:hidden}
.card.failed{border-left-color:var(--bad)}.card.unfinished,.card.not-started{border-left-color:var(--warn)}
.card[hidden]{display:none}.card h2{margin:0 0 8px;font-size:16px;word-break:break-all}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:var(--ok)}
.failed .status{background:var(--bad)}.unfinished .status,.not-started .status{background:var(--warn)}
video{width:100%;max-height:320px;background:#000;border-radius:4px}.strip{width:100%;display:block;margin-top:6px;border-radius:3px}
.poster{display:none}dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:8px 0;font-size:13px}dt{color:var(--mute)}dd{margin:0}
ol{margin:6px 0;padding-left:20px;font-size:13px}.reply{color:var(--mute)}.error{color:var(--bad);font-size:13px;white-space:pre-wrap}
.hint{font-size:13px}.empty{padding:24px;color:var(--mute)}
`;

// Filter by toggling `hidden`, so a test (or a reader) can count what is shown.
const SCRIPT = `
const box=document.getElementById('failed-only');
box.addEventListener('change',()=>{for(const c of document.querySelectorAll('.card'))c.hidden=box.checked&&!c.classList.contains('failed');});
`;

function card(job: ReportJob): string {
  const parts: string[] = [];
  parts.push(`<article class="card ${job.status}" data-job="${esc(job.id)}" data-status="${job.status}">`);
  parts.push(`<h2>${esc(job.id)} <span class="status">${esc(job.status.replace('-', ' '))}</span></h2>`);
  if (job.video) {
    const poster = job.poster ? ` poster="${href(job.poster)}"` : '';
    parts.push(`<video controls preload="metadata"${poster} src="${href(job.video)}"></video>`);
    if (job.poster) parts.push(`<img class="poster thumb" alt="" src="${href(job.poster)}">`);
    if (job.strip) parts.push(`<img class="strip thumb" alt="frames across ${esc(job.id)}" src="${href(job.strip)}">`);
  }
  parts.push('<dl>');
  if (job.duration !== undefined) parts.push(`<dt>duration</dt><dd>${job.duration.toFixed(2)} s</dd>`);
  if (job.width && job.height) parts.push(`<dt>size</dt><dd>${job.width} × ${job.height}</dd>`);
  parts.push(`<dt>credits</dt><dd>${job.credits}</dd>`);
  if (job.video) parts.push(`<dt>video</dt><dd><a href="${href(job.video)}">${esc(job.video)}</a></dd>`);
  if (job.record) parts.push(`<dt>provenance</dt><dd><a href="${href(job.record)}">${esc(job.record)}</a></dd>`);
  parts.push('</dl>');
  if (job.error) {
    parts.push(`<p class="error">${job.error.step ? `step ${esc(job.error.step)}: ` : ''}(${esc(job.error.code)}) ${esc(job.error.message)}</p>`);
    if (job.error.hint) parts.push(`<p class="hint">next: ${esc(job.error.hint)}</p>`);
  }
  if (job.instructions.length > 0) {
    parts.push('<ol class="instructions">');
    for (const i of job.instructions) parts.push(`<li>${esc(i.text)}${i.reply ? `<div class="reply">${esc(i.reply)}</div>` : ''}</li>`);
    parts.push('</ol>');
  }
  parts.push('</article>');
  return parts.join('');
}

/** The whole page. */
export function renderReportHtml(model: ReportModel): string {
  const count = (s: ReportJobStatus): number => model.jobs.filter((j) => j.status === s).length;
  const done = count('done');
  const failed = count('failed');
  const notStarted = count('not-started') + count('unfinished');
  const outcome = failed > 0 ? 'failed' : notStarted > 0 ? 'incomplete' : 'success';
  const jobs = orderJobs(model.jobs);
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    `<title>${esc(model.name)} — talk report</title><style>${STYLE}</style></head><body>`,
    `<header><h1>${esc(model.name)}: <span id="outcome" data-outcome="${outcome}">${outcome}</span></h1>`,
    `<div class="meta">workflow ${esc(model.workflow)} · report written ${esc(model.generatedAt)}${model.startedAt ? ` · run started ${esc(model.startedAt)}` : ''}</div>`,
    '<div class="totals">',
    `<div><b id="jobs-done">${done}</b>done</div><div><b id="jobs-failed">${failed}</b>failed</div><div><b id="jobs-not-started">${notStarted}</b>not started or unfinished</div>`,
    `<div><b id="credits">${model.credits}</b>credits</div>`,
    model.wallTimeMs !== undefined ? `<div><b id="wall-time">${duration(model.wallTimeMs)}</b>wall time</div>` : '',
    '</div></header>',
    `<div class="controls"><label><input type="checkbox" id="failed-only"> failed only (${failed})</label></div>`,
    '<main>',
    jobs.length === 0 ? '<p class="empty">This run has no jobs.</p>' : jobs.map(card).join('\n'),
    `</main><script>${SCRIPT}</script></body></html>`,
    '',
  ].join('\n');
}
