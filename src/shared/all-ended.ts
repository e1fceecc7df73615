/**
 * Waiting for several operations at once (one wait instead of one each)
 * without leaving any of them running behind a failure: a caller that
 * cleans up after an error (rolls a file back, closes it) must not do so
 * under a write still in flight.
 */

/**
 * Awaits every promise of `work`.
 * @returns their values, in order.
 * @throws the first failure (in `work`'s order), once all have ended.
 */
export async function allEnded<T>(work: ReadonlyArray<Promise<T>>): Promise<T[]> {
  const done = await Promise.allSettled(work);
  const failed = done.find((d): d is PromiseRejectedResult => d.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return done.map((d) => (d as PromiseFulfilledResult<T>).value);
}
