/**
 * Branded identifiers. A `SessionId` and a `RenderId` are both strings on the wire, but mixing
 * them up is a bug the compiler should catch.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A backend agent session (19-digit numeric string on NemoVideo). */
export type SessionId = Brand<string, 'SessionId'>;
/** A backend task (project) id, `task_…`. */
export type TaskId = Brand<string, 'TaskId'>;
/** A client-chosen render id, `render_<ms>_<random>`. */
export type RenderId = Brand<string, 'RenderId'>;
/** A job within a run: one per `foreach` item, or `main` without `foreach`. */
export type JobId = Brand<string, 'JobId'>;
/** A step id as written in the workflow, or as generated for the short form. */
export type StepId = Brand<string, 'StepId'>;

export const asSessionId = (s: string): SessionId => s as SessionId;
export const asTaskId = (s: string): TaskId => s as TaskId;
export const asRenderId = (s: string): RenderId => s as RenderId;
export const asJobId = (s: string): JobId => s as JobId;
export const asStepId = (s: string): StepId => s as StepId;
