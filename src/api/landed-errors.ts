/**
 * Errors thrown after a transaction was appended to the log (by a
 * CommitHooks.afterCommit, e.g. a publish that failed): what the commit
 * saved must then be kept, not rolled back, since the log refers to it.
 */
const landed = new WeakSet<object>();

export function markLandedInLog(err: unknown): void {
  if (err !== null && typeof err === "object") landed.add(err);
}

/** Whether `err` (from Mailbox.commitWith) was thrown after its transaction reached the log. */
export function isLandedInLog(err: unknown): boolean {
  return err !== null && typeof err === "object" && landed.has(err);
}
