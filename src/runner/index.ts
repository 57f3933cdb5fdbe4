/**
 * The runner (see runner.ts for the model): `executePlan` for `talk run`, `createRunner` for jobs
 * that arrive over time (`talk watch`), and the resume preview `talk plan` prints.
 */
export { createRunner, executePlan, type JobOutcome, type OutputInfo, type RunOutcome, type Runner, type RunnerDeps } from './runner.js';
export { createLimiters, type Limiters } from './limiters.js';
export { CreditBudget, type AdmissionRefusal, type SharedCredits } from './budget.js';
export { AccountTurns, TurnsGroup, type RemoteTurns, type TurnSpan } from './account-turns.js';
export { decideJob, describeDecision, remainingCredits, type JobDecision, type ResumeAction, type StepDecision } from './resume.js';
export { cachedHasher, changedFields, dependenciesOf, fingerprintJob, hashFile, FINGERPRINT_FIELDS, type FileHasher, type FingerprintField, type StepFingerprint } from './fingerprint.js';
export { previewResume, type ResumePreview } from './preview.js';
export { fitCredits, type CreditFit } from './fit.js';
export { writeProvenance, publicUrl, PROVENANCE_FORMAT_VERSION, type MediaFacts, type ProvenanceDeps, type ProvenanceRecord, type StepTiming } from './provenance.js';
