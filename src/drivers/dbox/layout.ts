/**
 * Where a dbox storage (sdbox, mdbox) keeps each mailbox's mail and index
 * files (list layout `fs`, names modified UTF-7 per level). Checked with
 * doveadm 2.3.19 for `sdbox:/r`, `sdbox:/r:INDEX=/i` and the same for mdbox:
 *
 * | what | without INDEX= | with INDEX=/i |
 * |---|---|---|
 * | mailbox "A/B" mail (u.N; mdbox: nothing) | `/r/mailboxes/A/B/dbox-Mails` | the same |
 * | its dovecot.index* | the mail directory | `/i/mailboxes/A/B` |
 * | dovecot.list.index*, dovecot.mailbox.log | `/r` | `/i` |
 * | mdbox m.N files | `/r/storage` | the same |
 * | mdbox dovecot.map.index* | `/r/storage` | `/i/storage` |
 * | dovecot-uidvalidity*, subscriptions | `/r` | the same |
 *
 * A missing index root is created with the mail root's mode and group.
 * `INDEX=MEMORY` is refused: doveadm 2.3.19 cannot use it for dbox either
 * (sdbox: "Couldn't create index file" on every command, exit 75; mdbox: a
 * panic in mdbox_map_init), so there is no behaviour to be compatible with.
 */
import * as path from "node:path";
import { MailstoreError } from "../../shared/errors.js";
import { makeDirs } from "../../shared/make-dirs.js";
import { encodeMutf7 } from "../mutf7.js";

export const MAILBOXES_DIR = "mailboxes";
export const DBOX_MAILS_DIR = "dbox-Mails";
/** The prefix of a mailbox's index files. */
export const MAILBOX_INDEX_PREFIX = "dovecot.index";

/** `<root>/mailboxes/<A>/<B>` for "A/B": the directories a name maps to, without dbox-Mails. */
function mailboxTreeDir(root: string, name: string): string {
  const parts = name.split("/").map((part) => {
    if (part === "" || part === "." || part === "..") throw new MailstoreError("INVALID_ARGUMENT", `invalid mailbox name "${name}"`);
    return encodeMutf7(part);
  });
  return path.join(root, MAILBOXES_DIR, ...parts);
}

/**
 * The mail directory of mailbox `name` under a mail (or ALT) root.
 * @throws MailstoreError INVALID_ARGUMENT for a name with an empty, `.` or `..` level.
 */
export function mailboxDir(root: string, name: string): string {
  return path.join(mailboxTreeDir(root, name), DBOX_MAILS_DIR);
}

/** Roots of a dbox location, all absolute. */
export interface DboxRoots {
  /** `ALT=`. */
  readonly alt?: string;
  /** `INDEX=`; "" (in-memory indexes) is refused. */
  readonly index?: string;
}

/** The paths of one dbox location (see the module comment). */
export class DboxLayout {
  readonly altRoot: string | undefined;
  /** `INDEX=`, when the index files have a tree of their own. */
  readonly indexRoot: string | undefined;

  /** @throws MailstoreError UNSUPPORTED for `INDEX=MEMORY` (see the module comment). */
  constructor(readonly root: string, roots: DboxRoots = {}) {
    if (roots.index === "") {
      throw new MailstoreError("UNSUPPORTED", "in-memory indexes (INDEX=MEMORY) are not supported for sdbox and mdbox: the log is the source of truth, and Dovecot 2.3 cannot open such a dbox location either", { path: root });
    }
    this.altRoot = roots.alt;
    this.indexRoot = roots.index;
  }

  /** Where storage-wide index files live: dovecot.list.index*, dovecot.mailbox.log (mdbox: `storage/dovecot.map.index*` below it). */
  get indexRootDir(): string {
    return this.indexRoot ?? this.root;
  }

  /** `<root>/mailboxes/…/dbox-Mails`: the mailbox's mail files, and its existence. */
  mailDir(name: string): string {
    return mailboxDir(this.root, name);
  }

  /** The mailbox's directory in ALT storage, when there is one. */
  altDir(name: string): string | undefined {
    return this.altRoot === undefined ? undefined : mailboxDir(this.altRoot, name);
  }

  /** Where the mailbox's dovecot.index* files live. */
  indexDir(name: string): string {
    return this.indexRoot === undefined ? this.mailDir(name) : mailboxTreeDir(this.indexRoot, name);
  }

  /** The index prefix (`…/dovecot.index`) of mailbox `name`. */
  indexPrefix(name: string): string {
    return path.join(this.indexDir(name), MAILBOX_INDEX_PREFIX);
  }

  /** Creates the mailbox's mail directory (which makes it exist) and its index directory. */
  makeMailboxDirs(name: string): void {
    makeDirs(this.mailDir(name));
    if (this.indexRoot !== undefined) this.makeIndexDirs(this.indexDir(name));
  }

  /** Creates the index root when missing (with the mail root's permissions, as Dovecot), then `dir` below it. */
  makeIndexDirs(dir: string): void {
    if (this.indexRoot !== undefined) makeDirs(this.indexRoot, { permissionsOf: this.root });
    makeDirs(dir);
  }
}
