/** Type guards for values read from the wire or from disk. */

/** A plain object (not null, not an array): the shape every JSON body and record is read as. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
