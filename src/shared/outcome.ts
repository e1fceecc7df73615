/**
 * A promise's outcome held as a value: for work started now and awaited
 * later (a read ahead, a sync under way), whose failure must not count as
 * an unhandled rejection meanwhile, nor be lost.
 */
export type Outcome<T> = { readonly value: T } | { readonly error: unknown };

/** `work`'s outcome, never a rejection. */
export function outcomeOf<T>(work: Promise<T>): Promise<Outcome<T>> {
  return work.then((value) => ({ value }), (error: unknown) => ({ error }));
}

/** The value of an outcome. @throws its error. */
export async function valueOf<T>(outcome: Promise<Outcome<T>>): Promise<T> {
  const settled = await outcome;
  if ("error" in settled) throw settled.error;
  return settled.value;
}
