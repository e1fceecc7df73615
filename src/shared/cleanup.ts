/**
 * Cleanup on a failure path: the failure is what the caller rethrows, so a
 * cleanup step that fails too must not replace it — nor vanish. Its error
 * is kept on the failure (`suppressed`, as Java's try-with-resources and
 * the TC39 SuppressedError keep theirs), where a debugger or a report
 * finds it.
 */

/** An error that carries the errors of the cleanup that ran after it. */
export interface ErrorWithSuppressed extends Error {
  suppressed?: unknown[];
}

/** Runs `step` after `failure`; a step error is added to `failure.suppressed`, never thrown. */
export async function cleanupAfter(failure: unknown, step: () => unknown): Promise<void> {
  try {
    await step();
  } catch (stepError) {
    suppress(failure, stepError);
  }
}

/** cleanupAfter for a synchronous step. */
export function cleanupAfterSync(failure: unknown, step: () => void): void {
  try {
    step();
  } catch (stepError) {
    suppress(failure, stepError);
  }
}

function suppress(failure: unknown, stepError: unknown): void {
  if (failure instanceof Error) {
    const f = failure as ErrorWithSuppressed;
    f.suppressed = [...(f.suppressed ?? []), stepError];
  }
}

/**
 * Runs every step, in order, whatever the earlier ones did: a close that
 * fails must not leave the next descriptor or lock held.
 * @throws the first step's error, the later ones on its `suppressed`.
 */
export async function cleanupAll(steps: ReadonlyArray<() => unknown>): Promise<void> {
  let failure: { readonly err: unknown } | undefined;
  for (const step of steps) {
    if (failure !== undefined) {
      await cleanupAfter(failure.err, step);
      continue;
    }
    try {
      await step();
    } catch (err) {
      failure = { err };
    }
  }
  if (failure !== undefined) throw failure.err;
}
