/** Crash messages: deterministic bytes per id, so a survivor can be checked whole. */

/** The message with id `id` (LF line endings, 0.1-4 KB). */
export function crashBody(id: number): string {
  return `From: crash@test\nSubject: crash ${id}\nMessage-ID: <${id}@crash.test>\n\n` + `line of message ${id}\n`.repeat(5 + (id % 97));
}

/** The id in a crash message's Subject, or undefined for anything else. */
export function crashIdOf(text: string): number | undefined {
  const m = /^Subject: crash (\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Flags a crash step may set (no \Deleted: doveadm would hide nothing, but a purge would remove nothing either). */
export const CRASH_FLAG_POOL: readonly string[] = ["\\Seen", "\\Flagged", "\\Answered", "$Work", "$Later"];
