import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { StorageBackend, StorageLogAppend } from "../drivers/driver.js";
import { resolveMailLocation, type ResolvedMailLocation } from "../drivers/location-detect.js";
import { SdboxStorageBackend } from "../drivers/sdbox/storage-backend.js";
import { MaildirStorageBackend } from "../drivers/maildir/storage-backend.js";
import { MboxStorageBackend } from "../drivers/mbox/storage-backend.js";
import { MdboxStorageBackend } from "../drivers/mdbox/storage-backend.js";
import { cleanupAfter } from "../shared/cleanup.js";
import { MailstoreError } from "../shared/errors.js";
import { checkNewMailboxName } from "../drivers/mailbox-names.js";
import { listSubscriptions, setSubscription } from "../drivers/subscriptions.js";
import type { FsyncMode } from "../log/log.js";
import { Mailbox, type MailboxOptions } from "./mailbox.js";
import { ClosedIndexCache } from "../index-io/closed-index-cache.js";

/** A mailbox as it was just before a rename or delete, or just after its create (what MailboxTreeHooks see). */
export interface MailboxIdentity {
  /** Its name before the change (a create: its new name). */
  name: string;
  /** Its own GUID (undefined: no index yet, or an mbox never synced). */
  guid: string | undefined;
  uidValidity: number;
}

/** A create, rename or delete of one mailbox (`to` for a rename). */
export type MailboxTreeChange =
  | { type: "create"; mailbox: MailboxIdentity }
  | { type: "rename"; mailbox: MailboxIdentity; to: string }
  | { type: "delete"; mailbox: MailboxIdentity };

/**
 * Generic hooks around Storage.createMailbox, Storage.renameMailbox and
 * Storage.deleteMailbox, in the spirit of CommitHooks. `beforeMailboxChange`
 * runs before a rename or delete with the mailbox open (closed again before
 * the change): throwing there refuses the change, nothing is changed. It is
 * not run for a create (there is no mailbox yet). `afterMailboxChange` runs
 * once the change is on disk: throwing there fails the call (the local
 * change stays). For a create it gets the new mailbox, open (closed after
 * the hook), with its index just created. They are not run for a rename or
 * delete of a mailbox that has no index yet (nothing of it was ever
 * committed). Replication (src/replication) uses them.
 */
export interface MailboxTreeHooks {
  beforeMailboxChange?(change: MailboxTreeChange, mailbox: Mailbox): Promise<void>;
  /** `mailbox`: for a create, the new mailbox (open); undefined for a rename or delete. */
  afterMailboxChange?(change: MailboxTreeChange, mailbox?: Mailbox): Promise<void>;
}

/** A change of the storage as a whole, beyond one mailbox's log (what StorageHooks see). */
export type StorageChange =
  | { type: "purge" }
  /** `mailbox`: as it is at the move (a move changes no name, GUID or UIDVALIDITY). */
  | { type: "altmove"; mailbox: MailboxIdentity; uids: readonly number[]; toAlt: boolean }
  /** A subscribe (`subscribe` true) or unsubscribe of `name`, as the caller gave it. */
  | { type: "subscription"; name: string; subscribe: boolean };

/**
 * Hooks around Storage.purge, Storage.altMove, Storage.subscribe and
 * Storage.unsubscribe, in the spirit of MailboxTreeHooks.
 * `beforeStorageChange` runs first: throwing there refuses the change,
 * nothing is changed. `afterStorageChange` runs once the change is on disk,
 * with what it appended to the storage-wide log (mdbox: the map's, in
 * order; empty for other formats and for subscriptions): throwing there
 * fails the call (the local change stays). Not run for a purge of a format
 * that has none (a no-op, as Dovecot's); `afterStorageChange` is not run
 * for a subscribe or unsubscribe that changed nothing. Replication
 * (src/replication) uses them.
 */
export interface StorageHooks {
  beforeStorageChange?(change: StorageChange, storage: Storage): Promise<void>;
  afterStorageChange?(change: StorageChange, storageLog: readonly StorageLogAppend[], storage: Storage): Promise<void>;
}

export interface StorageOptions extends MailboxOptions {
  /** Home directory for `~` and autodetection (default: $HOME). */
  home?: string;
  env?: Readonly<Record<string, string | undefined>>;
  fsync?: FsyncMode;
  /**
   * Open only a store that is there: a missing root (for mbox, its mail
   * directory and INBOX file) is NOT_FOUND and nothing is created. For
   * work on existing mail (reading, flagging, expunging); a mistyped
   * location then fails instead of leaving an empty store behind.
   */
  mustExist?: boolean;
  /** Called around every mailbox create, rename and delete (see MailboxTreeHooks). */
  mailboxTreeHooks?: MailboxTreeHooks;
  /** Called around every purge and altmove (see StorageHooks). */
  storageHooks?: StorageHooks;
}

/** A mail location opened for use: its mailbox tree and open mailboxes. */
export class Storage {
  /** Mailboxes open now: a mailbox leaves it when it closes. */
  private readonly open = new Set<Mailbox>();
  /** States of mailboxes closed a moment ago: opening one again reads only its new log (see closed-index-cache.ts). */
  private readonly closedIndexes = new ClosedIndexCache();

  /** @internal The format driver: for the engine's own modules, not part of the public API. */
  readonly backend: StorageBackend;

  private constructor(readonly location: ResolvedMailLocation, backend: StorageBackend, private readonly options: StorageOptions) {
    this.backend = backend;
  }

  /**
   * Opens a Dovecot mail location (`sdbox:/path`, `mdbox:~/mdbox:ALT=/alt`,
   * `maildir:~/Maildir`, …); an empty location uses $MAIL or autodetection.
   */
  static open(location: string, options: StorageOptions = {}): Storage {
    const resolved = resolveMailLocation(location, { home: options.home ?? os.homedir(), env: options.env ?? process.env });
    if (options.mustExist || options.readOnly) requireExistingStore(resolved);
    return new Storage(resolved, backendFor(resolved, options), options);
  }

  get format(): string {
    return this.backend.format;
  }

  /** Opened with StorageOptions.readOnly. */
  get readOnly(): boolean {
    return this.options.readOnly ?? false;
  }

  /** Mailbox names ("/"-separated). */
  listMailboxes(): Promise<string[]> {
    return this.backend.listMailboxes();
  }

  /**
   * Creates a mailbox and its log, with a fresh UIDVALIDITY or the one given
   * (Dovecot's mailbox_create with a mailbox_update, as dsync creates a
   * mailbox that keeps its source's UIDs). A Maildir folder that already has
   * a dovecot-uidlist, or an mbox file with X-IMAPbase, keeps theirs.
   * With MailboxTreeHooks, `afterMailboxChange` gets a `create` change (the
   * new mailbox's name, GUID and UIDVALIDITY) before this returns.
   */
  async createMailbox(name: string, opts: { uidValidity?: number } = {}): Promise<void> {
    if (opts.uidValidity !== undefined && (!Number.isInteger(opts.uidValidity) || opts.uidValidity < 1 || opts.uidValidity > 0xffffffff)) {
      throw new MailstoreError("INVALID_ARGUMENT", `UIDVALIDITY ${opts.uidValidity} is not a 32-bit value above 0`);
    }
    this.checkWritable("create a mailbox");
    checkNewMailboxName(name, this.location.driver);
    await this.backend.createMailbox(name);
    const uidValidity = opts.uidValidity ?? (await this.backend.nextUidValidity());
    const box = Mailbox.open(name, this.backend.openMailbox(name), { ...this.options, createWithUidValidity: uidValidity });
    try {
      const after = this.options.mailboxTreeHooks?.afterMailboxChange;
      if (after) await after({ type: "create", mailbox: { name, guid: box.guid(), uidValidity: box.uidValidity } }, box);
    } finally {
      await box.close();
    }
  }

  /**
   * Opens a mailbox. INBOX is created on first use, as Dovecot does; other
   * missing mailboxes give NOT_FOUND.
   */
  async openMailbox(name: string): Promise<Mailbox> {
    const normalized = name.toUpperCase() === "INBOX" ? "INBOX" : name;
    if (!(await this.backend.mailboxExists(normalized))) {
      if (normalized !== "INBOX" || this.readOnly) throw new MailstoreError("NOT_FOUND", `mailbox ${name} does not exist`);
      await this.backend.createMailbox("INBOX");
    }
    const backend = this.backend.openMailbox(normalized);
    const isNew = !fs.existsSync(backend.indexPrefix + ".log") && !fs.existsSync(backend.indexPrefix);
    if (isNew && this.readOnly) {
      // Creating the index would be a write; its mail files (an MDA's deliveries) are indexed by the next writer or Dovecot.
      throw new MailstoreError("NOT_FOUND", `mailbox ${name} has no index yet, and read-only access does not create one`, { path: backend.indexPrefix + ".log" });
    }
    const box = Mailbox.open(normalized, backend, {
      ...this.options,
      createWithUidValidity: isNew ? await this.backend.nextUidValidity() : undefined,
      closedIndexes: this.closedIndexes,
      // A long-running server opens and closes mailboxes for ever: a closed one (its whole state) is let go.
      onClosed: (closed) => this.open.delete(closed),
    });
    this.open.add(box);
    if (this.readOnly) return box;
    await box.finishInterruptedMoves((other) => this.openIndexed(other));
    const afterOpen = this.options.commitHooks?.afterOpen;
    if (afterOpen) {
      try {
        await afterOpen(box);
      } catch (err) {
        await box.close();
        throw err;
      }
    }
    return box;
  }

  /** Whether mailbox `name` exists with an index (something of it was committed): opening it then creates nothing. */
  async hasIndex(name: string): Promise<boolean> {
    if (!(await this.backend.mailboxExists(name))) return false;
    // Opened for its index prefix only, and closed again: an mbox backend holds a reference on the file's shared
    // descriptor, which would otherwise stay open after every later user of the file let go of it.
    const backend = this.backend.openMailbox(name);
    try {
      return fs.existsSync(backend.indexPrefix + ".log") || fs.existsSync(backend.indexPrefix);
    } finally {
      await backend.close();
    }
  }

  /** Opens mailbox `name` when it has an index (else undefined), outside `this.open`: the caller closes it. */
  private async openIndexed(name: string): Promise<Mailbox | undefined> {
    return (await this.hasIndex(name)) ? Mailbox.open(name, this.backend.openMailbox(name), this.options) : undefined;
  }

  async deleteMailbox(name: string): Promise<void> {
    this.checkWritable("delete a mailbox");
    const identity = await this.beforeTreeChange(name, (mailbox) => ({ type: "delete", mailbox }));
    this.closedIndexes.clear();
    await this.backend.deleteMailbox(name);
    if (identity) await this.options.mailboxTreeHooks?.afterMailboxChange?.(identity);
  }

  async renameMailbox(from: string, to: string): Promise<void> {
    this.checkWritable("rename a mailbox");
    checkNewMailboxName(to, this.location.driver);
    const identity = await this.beforeTreeChange(from, (mailbox) => ({ type: "rename", mailbox, to }));
    this.closedIndexes.clear();
    await this.backend.renameMailbox(from, to);
    if (identity) await this.options.mailboxTreeHooks?.afterMailboxChange?.(identity);
  }

  /**
   * With MailboxTreeHooks: opens mailbox `name` (when it exists and has an
   * index), runs `beforeMailboxChange` and closes it again.
   * @returns the change for `afterMailboxChange`, or undefined when the hooks are not run.
   */
  private async beforeTreeChange(name: string, change: (mailbox: MailboxIdentity) => MailboxTreeChange): Promise<MailboxTreeChange | undefined> {
    const hooks = this.options.mailboxTreeHooks;
    const box = hooks && (await this.openIndexed(name));
    if (!box) return undefined;
    try {
      const c = change({ name, guid: box.guid(), uidValidity: box.uidValidity });
      await hooks.beforeMailboxChange?.(c, box);
      return c;
    } finally {
      await box.close();
    }
  }

  /**
   * Subscribes to mailbox `name` (IMAP SUBSCRIBE; it need not exist) in
   * Dovecot's subscriptions file. @returns whether anything changed.
   */
  async subscribe(name: string): Promise<boolean> {
    return this.setSubscribed(name, true);
  }

  /** IMAP UNSUBSCRIBE. @returns whether anything changed. */
  async unsubscribe(name: string): Promise<boolean> {
    return this.setSubscribed(name, false);
  }

  /** subscribe/unsubscribe between the StorageHooks (the after hook only when the file changed). */
  private async setSubscribed(name: string, subscribe: boolean): Promise<boolean> {
    this.checkWritable(subscribe ? "subscribe" : "unsubscribe");
    const loc = this.backend.subscriptionsLocation();
    let changed = false;
    await this.storageChange({ type: "subscription", name, subscribe }, async () => {
      changed = await setSubscription(loc, name, subscribe);
      return changed;
    }, () => changed);
    return changed;
  }

  /** Subscribed mailbox names ("/"-separated, INBOX upper case), existing or not, in the file's order. */
  async listSubscriptions(): Promise<string[]> {
    return listSubscriptions(this.backend.subscriptionsLocation());
  }

  /** The storage-wide index (mdbox: dovecot.map.index) as Mailbox.indexLogTail leaves a mailbox's: after a bulk write. */
  async indexLogTail(): Promise<void> {
    this.checkWritable("index the log");
    await this.backend.indexLogTail?.();
  }

  /** mdbox: reclaims the space of expunged messages (a no-op for other formats, as in Dovecot). */
  async purge(): Promise<void> {
    this.checkWritable("purge");
    const backend = this.backend;
    if (!backend.purge) return;
    // Mailboxes closed a moment ago are still in memory: the purge's reference check starts from them.
    await this.storageChange({ type: "purge" }, () => backend.purge!({ closedIndexes: this.closedIndexes }));
  }

  /** Moves messages to the alternate storage (`toAlt` false: back to the primary). */
  async altMove(mailbox: string, uids: readonly number[], toAlt = true): Promise<void> {
    this.checkWritable("altmove");
    const backend = this.backend;
    if (!backend.altMove) throw new MailstoreError("UNSUPPORTED", `altmove is not supported for ${backend.format}`);
    const name = mailbox.toUpperCase() === "INBOX" ? "INBOX" : mailbox;
    // The hooks name the mailbox as replicas know it (GUID, UIDVALIDITY); one with no index has no messages to move.
    const identity = this.options.storageHooks && (await this.hasIndex(name)) ? await this.identityOf(name) : undefined;
    const move = () => backend.altMove!(name, uids, toAlt);
    if (identity === undefined) await move();
    else await this.storageChange({ type: "altmove", mailbox: identity, uids: [...uids], toAlt }, move);
  }

  /**
   * Runs `change` between the StorageHooks, noting what it appended to the
   * storage-wide log. `changed`: whether `run` changed anything (default
   * yes); the after hook is not run when it did not.
   */
  private async storageChange(change: StorageChange, run: () => Promise<unknown>, changed: () => boolean = () => true): Promise<void> {
    const hooks = this.options.storageHooks;
    await hooks?.beforeStorageChange?.(change, this);
    const storageLog = this.backend.collectStorageLog ? (await this.backend.collectStorageLog(run)).appends : (await run(), []);
    if (changed()) await hooks?.afterStorageChange?.(change, storageLog, this);
  }

  /** The name, GUID and UIDVALIDITY of mailbox `name`, which has an index (opened and closed again; no hooks run). */
  private async identityOf(name: string): Promise<MailboxIdentity> {
    const box = Mailbox.open(name, this.backend.openMailbox(name), this.options);
    try {
      return { name, guid: box.guid(), uidValidity: box.uidValidity };
    } finally {
      await box.close();
    }
  }

  /** Rebuilds indexes from the mail files ("*" = every mailbox), as doveadm force-resync. */
  async forceResync(mailbox: string): Promise<void> {
    this.checkWritable("force-resync");
    if (!this.backend.forceResync) throw new MailstoreError("UNSUPPORTED", `force-resync is not supported for ${this.backend.format} yet`);
    this.closedIndexes.clear();
    await this.backend.forceResync(mailbox);
  }

  /** mdbox: expunged messages whose bodies are still stored (not purged yet). */
  async deletedMessages(): Promise<NonNullable<Awaited<ReturnType<NonNullable<StorageBackend["listDeleted"]>>>>> {
    return (await this.backend.listDeleted?.()) ?? [];
  }

  /** mdbox: puts a deleted message back into `mailbox` (default: where it was first saved). */
  async recoverDeleted(mapUid: number, mailbox?: string): Promise<{ mailbox: string; uid: number }> {
    this.checkWritable("recover a deleted message");
    if (!this.backend.recoverDeleted) throw new MailstoreError("UNSUPPORTED", `deleted-message recovery is not supported for ${this.backend.format}`);
    return this.backend.recoverDeleted(mapUid, mailbox);
  }

  /** @throws MailstoreError UNSUPPORTED when the storage was opened read-only. */
  private checkWritable(what: string): void {
    if (this.readOnly) throw new MailstoreError("UNSUPPORTED", `cannot ${what}: the storage is open read-only`, { path: this.location.root });
  }

  /** Closes every mailbox opened through this storage (handles, locks, watches). */
  async close(): Promise<void> {
    // One at a time, but every one: a close that throws (a beforeClose hook's failure) must not
    // leave the others and the backend open. The first failure is rethrown, later ones ride on it.
    let failure: { err: unknown } | undefined;
    for (const box of [...this.open]) {
      if (failure !== undefined) {
        await cleanupAfter(failure.err, () => box.close());
        continue;
      }
      try {
        await box.close();
      } catch (err) {
        failure = { err };
      }
    }
    this.open.clear();
    this.closedIndexes.clear();
    if (failure === undefined) return this.backend.close();
    await cleanupAfter(failure.err, () => this.backend.close());
    throw failure.err;
  }
}

function backendFor(loc: ResolvedMailLocation, options: StorageOptions): StorageBackend {
  const root = path.resolve(loc.root);
  // Mail files follow the log's setting: only "never" skips their fsyncs (Dovecot's mail_fsync).
  const fsyncFiles = options.fsync === undefined ? undefined : options.fsync !== "never";
  // INDEX=MEMORY stays "" so that the backend refuses it by name.
  const indexRoot = loc.index && path.resolve(loc.index);
  const altRoot = loc.alt ? path.resolve(loc.alt) : undefined;
  switch (loc.driver) {
    case "sdbox":
    case "dbox":
      return new SdboxStorageBackend(root, { alt: altRoot, index: indexRoot }, fsyncFiles);
    case "mdbox":
      // The storage-wide map honours the storage's fsync and lock-wait settings too.
      return new MdboxStorageBackend(root, altRoot, { indexRoot, fsync: options.fsync, fsyncFiles, lockTimeoutMs: options.lockTimeoutMs });
    case "maildir":
      return new MaildirStorageBackend(root, {
        inbox: loc.inbox && path.resolve(loc.inbox), index: indexRoot,
        control: loc.control && path.resolve(loc.control), layout: loc.layout, utf8: loc.utf8, fsync: fsyncFiles,
      });
    case "mbox":
      return new MboxStorageBackend(root, {
        inbox: loc.inbox && path.resolve(loc.inbox), index: indexRoot, mailbox: { fsync: fsyncFiles },
      });
    default:
      throw new MailstoreError("UNSUPPORTED", `the ${loc.driver} driver is not available yet`);
  }
}

/** Opens a mail location; see Storage.open. */
/** @throws MailstoreError NOT_FOUND when the store `loc` names is not there (StorageOptions.mustExist). */
function requireExistingStore(loc: ResolvedMailLocation): void {
  const candidates = loc.driver === "mbox" ? [loc.root, loc.inbox ?? ""] : [loc.root];
  if (candidates.some((p) => p !== "" && fs.existsSync(p))) return;
  throw new MailstoreError("NOT_FOUND", `no ${loc.driver} store at ${loc.root} (nothing was created)`, { path: loc.root });
}

export function openStorage(location: string, options: StorageOptions = {}): Storage {
  return Storage.open(location, options);
}
