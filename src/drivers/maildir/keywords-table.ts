/**
 * dovecot-keywords while a save or sync uses it: letters for keyword names
 * (a new name takes the first free letter), names for letters (a letter
 * without a line becomes `unknown-<n>`, which Dovecot then writes into the
 * file — observed), and one rewrite at the end when something was added.
 *
 * Dovecot changes the file only with the uidlist lock held, and writes it
 * through `dovecot-keywords.lock`: the new content goes into the lock file,
 * which is renamed over the old one, with an mtime later than the old one's
 * so that readers caching by mtime see the change.
 */
import * as fs from "node:fs";
import { MAILDIR_LOCK_TOUCH_MS, takeDotlock } from "../dotlock.js";
import { addMaildirKeyword, formatMaildirKeywords, maildirKeywordIndex, parseMaildirKeywords, type MaildirKeywords } from "./keywords-file.js";

/** Reads dovecot-keywords, cached by its mtime and size. */
export class KeywordsFile {
  private cache: { key: string; keywords: MaildirKeywords } | undefined;

  constructor(readonly path: string, private readonly fsync: boolean) {}

  /** @returns the table (empty when the file does not exist). */
  read(): MaildirKeywords {
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(this.path, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const key = `${st.ino}:${st.size}:${st.mtimeNs}`;
    if (this.cache?.key === key) return this.cache.keywords;
    // Byte for byte (latin1), as the log stores names: a line that is not UTF-8 stays a
    // keyword the log can hold, instead of one with U+FFFD that no later write could encode.
    const keywords = parseMaildirKeywords(fs.readFileSync(this.path, "latin1"));
    this.cache = { key, keywords };
    return keywords;
  }

  /** A working copy for one save or sync. */
  table(): KeywordTable {
    return new KeywordTable(this, this.read());
  }

  /** Writes `keywords` through the keywords dotlock. Call with the uidlist lock held. */
  async write(keywords: MaildirKeywords): Promise<void> {
    let oldMtimeSecs: number | undefined;
    try {
      oldMtimeSecs = Math.floor(fs.statSync(this.path).mtimeMs / 1000);
    } catch (err) {
      // No dovecot-keywords yet: no old mtime to move past.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      oldMtimeSecs = undefined;
    }
    const lock = await takeDotlock(this.path, { timeoutMs: 10_000, touchEveryMs: MAILDIR_LOCK_TOUCH_MS });
    lock.replaceTarget(Buffer.from(formatMaildirKeywords(keywords), "latin1"), { fsync: this.fsync, mtimeAfterSecs: oldMtimeSecs });
    this.cache = undefined;
  }
}

/** Letter ↔ name lookups that may add names; `flush()` saves the additions. */
export class KeywordTable {
  private keywords: MaildirKeywords;
  private changed = false;

  constructor(private readonly file: KeywordsFile, keywords: MaildirKeywords) {
    this.keywords = keywords;
  }

  /** @returns the letter index of `name`, adding it when missing; undefined when all 26 are taken. */
  indexFor(name: string): number | undefined {
    const { keywords, index } = addMaildirKeyword(this.keywords, name);
    if (keywords !== this.keywords) {
      this.keywords = keywords;
      this.changed = true;
    }
    return index;
  }

  /** @returns the letter index of `name` if it has one (nothing is added). */
  existingIndex(name: string): number | undefined {
    return maildirKeywordIndex(this.keywords, name);
  }

  /** @returns the name of letter index `idx`; a letter without a name gets `unknown-<idx>`, recorded. */
  nameOf(idx: number): string {
    const name = this.keywords[idx];
    if (name !== undefined) return name;
    const next = [...this.keywords];
    next[idx] = `unknown-${idx}`;
    this.keywords = next;
    this.changed = true;
    return next[idx]!;
  }

  /** Writes the file if names were added. */
  async flush(): Promise<void> {
    if (!this.changed) return;
    await this.file.write(this.keywords);
    this.changed = false;
  }
}
