/**
 * Where a Maildir location keeps each mailbox's mail, index and control
 * files, observed with doveadm 2.3.19 (`maildir:<root>[:INBOX=][:INDEX=][:CONTROL=][:LAYOUT=fs]`):
 *
 * | | LAYOUT=maildir++ (default) | LAYOUT=fs |
 * |---|---|---|
 * | INBOX mail | `INBOX=` or `<root>` | `INBOX=` or `<root>` |
 * | mailbox `A/B` mail | `<root>/.A.B` | `<root>/A/B` |
 * | INBOX index / control | `<INDEX>/.INBOX`, else the mail dir | `<INDEX>/INBOX`, else the mail dir |
 * | `A/B` index / control | `<INDEX>/.A.B`, else the mail dir | `<INDEX>/A/B`, else the mail dir |
 * | dovecot-uidvalidity | `<CONTROL>` or `<root>` | same |
 *
 * The API separates hierarchy levels with "/"; Maildir++ stores "." on disk,
 * so a level containing "." cannot be named (it would be two levels). Levels
 * are modified UTF-7 on disk unless the location says UTF-8.
 */
import * as path from "node:path";
import { InvalidArgumentError, MailstoreError } from "../../shared/errors.js";
import { encodeMutf7 } from "../mutf7.js";
import { isInboxName, maildirMailboxDir, MAILDIR_SEPARATOR } from "./folders.js";

/** The parts of a mail location the Maildir driver uses. */
export interface MaildirLocationOptions {
  /** `INBOX=`: INBOX's Maildir, when not the root. */
  readonly inbox?: string;
  /** `INDEX=`: root of the index files' tree. "" (in-memory indexes) is not supported. */
  readonly index?: string;
  /** `CONTROL=`: root of dovecot-uidlist / dovecot-keywords / dovecot-uidvalidity. */
  readonly control?: string;
  /** `LAYOUT=`: "maildir++" (default) or "fs". */
  readonly layout?: string;
  /** `UTF-8`: names on disk are UTF-8 instead of modified UTF-7. */
  readonly utf8?: boolean;
}

/** Directories in every Maildir that are never mailbox names under LAYOUT=fs. */
const FS_RESERVED = new Set(["cur", "new", "tmp"]);

/** Path rules of one Maildir location. */
export class MaildirLayout {
  readonly root: string;
  readonly fsLayout: boolean;
  private readonly opts: MaildirLocationOptions;

  /** @throws MailstoreError (UNSUPPORTED) for in-memory indexes or an unknown layout. */
  constructor(root: string, opts: MaildirLocationOptions = {}) {
    this.root = root;
    this.opts = opts;
    const layout = (opts.layout ?? "maildir++").toLowerCase();
    if (layout !== "maildir++" && layout !== "fs") throw new MailstoreError("UNSUPPORTED", `LAYOUT=${opts.layout} is not supported for Maildir`);
    if (opts.index === "") throw new MailstoreError("UNSUPPORTED", "in-memory indexes (INDEX=MEMORY) are not supported: the log is the source of truth");
    this.fsLayout = layout === "fs";
  }

  get utf8(): boolean {
    return this.opts.utf8 ?? false;
  }

  /**
   * @returns the mailbox's name as stored under a tree root: "" for INBOX,
   *   `.A.B` (maildir++) or `A/B` (fs, platform separators).
   * @throws InvalidArgumentError for names that cannot be stored.
   */
  storedName(name: string): string {
    if (isInboxName(name)) return "";
    const levels = name.split("/");
    if (levels.some((l) => l === "" || l === "." || l === "..")) throw new InvalidArgumentError(`Invalid mailbox name: ${name}`);
    if (this.fsLayout) {
      if (FS_RESERVED.has(levels[0]) || levels.some((l) => l.startsWith("."))) throw new InvalidArgumentError(`Invalid mailbox name for LAYOUT=fs: ${name}`);
      return path.join(...levels.map((l) => (this.utf8 ? l : encodeMutf7(l))));
    }
    if (levels.some((l) => l.includes(MAILDIR_SEPARATOR))) {
      throw new InvalidArgumentError(`Maildir++ cannot store a "${MAILDIR_SEPARATOR}" inside a mailbox name level: ${name}`);
    }
    return maildirMailboxDir(levels.join(MAILDIR_SEPARATOR), { utf8: this.utf8 });
  }

  /** The Maildir (with cur/ new/ tmp/) of mailbox `name`. */
  mailDir(name: string): string {
    if (isInboxName(name)) return this.opts.inbox ?? this.root;
    return path.join(this.root, this.storedName(name));
  }

  /** Where the mailbox's dovecot.index* files live. */
  indexDir(name: string): string {
    return this.opts.index === undefined ? this.mailDir(name) : path.join(this.opts.index, this.inTree(name));
  }

  /** Where the mailbox's dovecot-uidlist and dovecot-keywords live. */
  controlDir(name: string): string {
    return this.opts.control === undefined ? this.mailDir(name) : path.join(this.opts.control, this.inTree(name));
  }

  /** Where dovecot-uidvalidity lives. */
  get uidValidityDir(): string {
    return this.opts.control ?? this.root;
  }

  /** Separate index and control trees, for renames and deletes. */
  get sideTrees(): string[] {
    return [this.opts.index, this.opts.control].filter((d): d is string => d !== undefined);
  }

  /** The name a mailbox has inside a separate INDEX=/CONTROL= tree. */
  inTree(name: string): string {
    if (!isInboxName(name)) return this.storedName(name);
    return this.fsLayout ? "INBOX" : ".INBOX";
  }
}
