/**
 * What a resume would do, without network: the decisions `talk run` would take now, from the
 * recorded state, for `talk plan` to print beside each step.
 */
import { stat } from 'node:fs/promises';
import type { Plan } from '../plan/types.js';
import type { RunState } from '../state/types.js';
import { cachedHasher, fingerprintJob, hashFile, type FileHasher } from './fingerprint.js';
import { decideJob, describeDecision, type JobDecision } from './resume.js';

/** Per job: the decision, and per step a sentence (`skip (done)`, `run (changed: definition)`, …). */
export interface ResumePreview {
  jobs: Map<string, { decision: JobDecision; steps: Map<string, string> }>;
}

/**
 * Preview a resume of `plan` over `state` (undefined = no earlier run: everything runs).
 * `backendId` must be what `talk run` would use (`local`, or the backend URL).
 */
export async function previewResume(
  plan: Plan,
  state: Pick<RunState, 'jobs'> | undefined,
  options: { backendId: string; hasher?: FileHasher; signal?: AbortSignal },
): Promise<ResumePreview> {
  const hasher = options.hasher ?? cachedHasher(hashFile);
  const jobs: ResumePreview['jobs'] = new Map();
  for (const job of plan.jobs) {
    const fingerprints = await fingerprintJob(job, { backendId: options.backendId, hasher, signal: options.signal });
    const recorded = state?.jobs[job.id];
    const intact = new Set<string>();
    for (const step of job.steps) {
      const out = recorded?.steps[step.id]?.output;
      if (!out) continue;
      try {
        if ((await stat(out.path)).size === out.bytes && (await hasher(out.path, { signal: options.signal })) === out.sha256) intact.add(step.id);
      } catch {
        // missing or unreadable: not intact
      }
    }
    const decision = decideJob(job, recorded, fingerprints, (id) => intact.has(id));
    const steps = new Map<string, string>();
    for (const [id, d] of decision.steps) steps.set(id, describeDecision(d, decision.newSession));
    jobs.set(job.id, { decision, steps });
  }
  return { jobs };
}
