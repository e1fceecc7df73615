import type { LogPosition, LogRecord } from "../log/types.js";
import type { TransactionEffects } from "../projections/effects.js";
import type { IndexMapState } from "../projections/state.js";
import type { ClosedIndexCache } from "../index-io/closed-index-cache.js";

/** The mail storage formats the engine keeps in Dovecot's layouts. */
export type MailFormat = "sdbox" | "mdbox" | "maildir" | "mbox";

/** A message handed to a transaction's append. */
export interface NewMessage {
  /** The RFC 822 message, exactly as it will be stored (LF or CRLF as given). */
  body: Uint8Array;
  /** System flag bits (MailFlag). */
  flags: number;
  keywords: readonly string[];
  /** IMAP INTERNALDATE as UNIX seconds; defaults to the save time. */
  receivedTime?: number;
  /** Message GUID to keep (copies, imports); a new one is made otherwise. */
  guid?: string;
  /**
   * The stored message this one is a copy of (its bytes are `body`), as
   * Dovecot's mailbox_copy knows its source: a driver may then share what
   * is stored instead of writing the bytes again (mdbox: the map record's
   * refcount +1; sdbox: a hard link of the u.N file).
   */
  copyOf?: CopyOrigin;
}

/** A stored message, named by the backend and state it was read through. */
export interface CopyOrigin {
  readonly backend: MailboxBackend;
  readonly state: IndexMapState;
  readonly uid: number;
}

/** The index header values a Mailbox.update sets (each absent when unchanged). */
export interface MailboxHeaderUpdate {
  readonly uidValidity?: number;
  readonly nextUid?: number;
}

/** How MailboxBackend.messageReader hands out bodies. */
export interface MessageReaderOptions {
  /**
   * A body may be a view that the reader's next read overwrites (the
   * caller is done with each before it reads the next): no fresh memory per
   * message. Formats that read each message into its own buffer ignore it.
   */
  readonly transient?: boolean;
}

/** A message's identity in the storage, as `doveadm fetch guid` reports it. */
export interface StoredMessageInfo {
  guid: string;
  physicalSize: number;
  receivedTime: number;
  savedTime: number;
}

/**
 * What a driver does for one mailbox. Every method that changes files is
 * called with the mailbox's log lock held and the state caught up to the end
 * of the log, so UIDs and file names cannot race with another writer.
 * Methods return the log records that describe what they did; the caller
 * appends them in one transaction.
 */
export interface MailboxBackend {
  /** The index prefix, e.g. `<root>/mailboxes/INBOX/dbox-Mails/dovecot.index`. */
  readonly indexPrefix: string;
  /** Whether Dovecot keeps `dovecot.index.backup` for this index (sdbox/mdbox). */
  readonly keepsIndexBackup: boolean;

  /** Records a brand-new log of this mailbox starts with (storage extensions, UIDVALIDITY). */
  initialRecords(uidValidity: number): LogRecord[];

  /**
   * Stores `messages` as `uids` (one per message, ascending, the first at
   * or above next_uid; usually next_uid, next_uid+1, …, but a caller that
   * keeps another mailbox's UIDs passes them with their gaps) and returns
   * the records after the APPEND (extension records such as mdbox's map_uid
   * and GUID). `commit` makes the files final once the log transaction
   * landed (for formats that stage files); `rollback` removes them if it
   * did not.
   */
  saveMessages(state: IndexMapState, messages: readonly NewMessage[], uids: readonly number[], stage?: SaveStage): Promise<PreparedSave>;

  /**
   * For formats whose message data can be written ahead of the commit
   * (mdbox: into m.N files, named and recorded by the map at commit): a
   * stage that writes it now, so a transaction of many messages need not
   * hold their bodies until commit. saveMessages then gets it, standing for
   * the first `stage.count` messages. Undefined: data is written at commit.
   */
  openSaveStage?(): SaveStage;

  /**
   * Brings the mail files in line with a change of the index header's
   * UIDVALIDITY or next_uid (Mailbox.update), for formats that keep them in
   * the files too (Maildir's dovecot-uidlist header, mbox's X-IMAPbase or
   * pseudo message). Called under the commit's locks, before the header
   * update is logged; `update` holds the values the index will have.
   * @returns extra records to log with the update ([] when none).
   */
  updateMailbox?(state: IndexMapState, update: MailboxHeaderUpdate): Promise<LogRecord[]>;

  /** Removes the message files of `uids` and returns the records that say so (EXTERNAL expunges and driver records). */
  expungeMessages(state: IndexMapState, uids: readonly number[]): Promise<LogRecord[]>;

  /** The stored bytes of message `uid`. */
  readMessage(state: IndexMapState, uid: number): Promise<Uint8Array>;

  /**
   * readMessage for many messages of `state` (a fetch), for formats that
   * read synchronously: the bytes of each uid with no promise per message
   * (with 20,000 messages, those promises cost as much as the reads).
   * Throws as readMessage rejects.
   */
  messageReader?(state: IndexMapState, options?: MessageReaderOptions): (uid: number) => Uint8Array;

  /** Identity and sizes of message `uid` as stored. */
  messageInfo(state: IndexMapState, uid: number): Promise<StoredMessageInfo>;

  /**
   * The GUID messageInfo() will give a message saved with `body` and
   * `guid`, when it is not `guid` itself (mbox: the header MD5, which a
   * save cannot set).
   */
  savedGuid?(body: Uint8Array, guid: string): string;

  /**
   * The mailbox GUID (`doveadm mailbox status guid`): 32 lowercase hex
   * digits of the 16 bytes in the order the format stores them (sdbox
   * `dbox-hdr`, mdbox `mdbox-hdr`, mbox `mbox` extension header, Maildir
   * dovecot-uidlist's `G`), or undefined while the mailbox has none.
   */
  mailboxGuid(state: IndexMapState): string | undefined;

  /**
   * Locks a commit must hold before the mailbox log's own (mdbox: the map,
   * which Dovecot locks first when it changes it): runs `fn` holding them.
   * `intent` says what the commit does, so that a lock nothing needs is not
   * taken (mdbox: a flag change leaves the storage-wide map alone).
   */
  withCommitLocks?<T>(fn: () => Promise<T>, intent?: CommitIntent): Promise<T>;

  /**
   * Inside `withCommitLocks`' `fn`: what this commit appended so far to the
   * storage-wide log (mdbox: the map records of its saves, copies and
   * expunges, i.e. refcount changes), in order. The mailbox's commit hooks
   * get it with the commit's own range (CommittedRange.storageLog).
   */
  storageLogAppends?(): readonly StorageLogAppend[];

  /**
   * Inside `withCommitLocks`' `fn`: lets go of the storage-wide lock it
   * took (mdbox: the map's) before `fn` ends, keeping the mailbox's own
   * locks; nothing when it took none. Nothing after it in `fn` may write
   * the storage-wide log (CommittedRange.releaseStorageLock).
   */
  releaseStorageLocks?(): Promise<void>;

  /**
   * Brings the mail files and the index together (Maildir, mbox): changes
   * made to the files outside the engine become transactions to log, and
   * the engine's own changes still owed to the files (after the index's
   * tail offset) are written to them. Called under the commit's locks with
   * the state caught up to `opts.logHead`.
   */
  syncExternalChanges?(state: IndexMapState, opts: ExternalSyncOptions): Promise<FileSyncResult>;

  /**
   * Whether the mail files changed since an index last synced them (two
   * stat()s: Maildir's new/ and cur/ mtimes against the `maildir` header, an
   * mbox file's size and mtime against the `mbox` header). For read-only
   * opens, which do not sync.
   */
  filesChangedSinceSync?(state: IndexMapState): boolean;

  /**
   * What a writer killed mid-commit left that the next commit would collide
   * with (sdbox: u.N files past next_uid), as transactions to log first.
   * Called under the commit's locks; must be cheap when there is nothing.
   */
  adoptLeftovers?(state: IndexMapState): Promise<LogRecord[][]>;

  /**
   * Work a commit leaves until its records are in the log (sdbox: unlinking
   * expunged files), or drops when the commit failed (`committed` false).
   * Called under the commit's log lock, by the commit that built that work.
   */
  afterCommit?(committed: boolean): Promise<void>;


  /**
   * Mail files that other programs change without writing a log (Maildir's
   * new/ and cur/, an mbox file): watched while the mailbox has change
   * subscribers, and synced when they change.
   */
  mailFilePaths?(): string[];

  close(): Promise<void>;
}

/** What a commit is about to do, as far as locks care. */
export interface CommitIntent {
  /** Saves, copies or expunges messages (default true: assume the worst). */
  readonly changesMessages: boolean;
}

/** What a file sync is told by the index writer that runs it. */
export interface ExternalSyncOptions {
  /** force-resync: skip the quick checks (mtimes, sizes) and read every file. */
  readonly force?: boolean;
  /**
   * The end of the log under the lock, as the writer's TransactionLog sees
   * it. Drivers never open dovecot.index.log themselves: closing any other
   * descriptor of the file would drop the process's fcntl lock.
   */
  readonly logHead: LogPosition;
  /**
   * The effects of every transaction after the state's tail offset, when the
   * writer folded them all: what the files still owe, without reading the
   * log. Undefined: read them from the log.
   */
  readonly unsyncedEffects?: readonly TransactionEffects[];
}

/** What a file sync did. */
export interface FileSyncResult {
  /** What changed in the files outside the engine, to log ([] when nothing). */
  readonly transactions: LogRecord[][];
  /**
   * The files now hold everything up to the end of the log: the writer
   * ends the write with the tail-offset update. False when the sync could
   * not run (another process holds the files' lock and will do it).
   */
  readonly filesSynced: boolean;
}

/** Message data a transaction wrote ahead of its commit (MailboxBackend.openSaveStage). */
export interface SaveStage {
  /** Messages written so far: the transaction's first appends, in order. */
  readonly count: number;
  /** Writes the data of these messages (the next appends after those written before; no copies). */
  add(messages: readonly NewMessage[]): Promise<void>;
  /**
   * False once the commit got as far as naming new files under the map
   * lock: a commit that failed after that cannot be tried again with this
   * stage.
   */
  readonly retryable: boolean;
  /**
   * Ends the stage: after a commit that recorded it, closes its files;
   * else takes back what it wrote. Idempotent.
   */
  release(): Promise<void>;
}

export interface PreparedSave {
  records: LogRecord[];
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/** Where a storage keeps its IMAP subscriptions, and how it spells names there. */
export interface SubscriptionsLocation {
  /** The subscriptions file: `<root>/subscriptions` (Maildir: the CONTROL= root), mbox `<root>/.subscriptions`. */
  readonly file: string;
  /** The directory of `dovecot.mailbox.log`, which records (un)subscriptions (the index root; mbox: its `.imap`). */
  readonly mailboxLogDir: string;
  /** The namespace hierarchy separator Dovecot shows ("." for Maildir++, "/" otherwise). */
  readonly separator: string;
  /** Names are UTF-8 on disk (the location's `UTF-8`), else modified UTF-7. */
  readonly utf8: boolean;
}

/**
 * Bytes a driver appended to a storage-wide log (mdbox: the map's
 * `storage/dovecot.map.index.log`) during a commit, purge or altmove: what
 * a hook needs to read them back exactly (log/segments.ts), as a mailbox
 * commit's own range is read from its log.
 */
export interface StorageLogAppend {
  /** Which storage-wide log: only the mdbox map has one. */
  readonly log: "map";
  /** The log's index prefix (`<prefix>.log`). */
  readonly indexPrefix: string;
  /** First written byte, and just past the last. */
  readonly start: LogPosition;
  readonly end: LogPosition;
  /** The log's running modseq at `start`. */
  readonly modseqBefore: bigint;
}

/** A storage: the mailbox tree of one mail location. */
export interface StorageBackend {
  readonly format: MailFormat;
  /** The root directory of the location. */
  readonly root: string;
  /** Mailbox names, hierarchy separated by "/". */
  listMailboxes(): Promise<string[]>;
  mailboxExists(name: string): Promise<boolean>;
  /** Creates the mailbox's directories; the caller then creates its log. */
  createMailbox(name: string): Promise<void>;
  deleteMailbox(name: string): Promise<void>;
  renameMailbox(from: string, to: string): Promise<void>;
  /** A UIDVALIDITY for a new mailbox, unique in this storage (dovecot-uidvalidity). */
  nextUidValidity(): Promise<number>;
  openMailbox(name: string): MailboxBackend;
  /** Where the IMAP subscriptions of this storage live. */
  subscriptionsLocation(): SubscriptionsLocation;
  /** mdbox: rewrite files holding refcount-0 messages (a no-op elsewhere, as in Dovecot). */
  purge?(opts?: { closedIndexes?: ClosedIndexCache }): Promise<unknown>;
  /** mdbox: rewrite dovecot.map.index when its log holds 8 KB or more it does not cover (see IndexWriter.indexTail). */
  indexLogTail?(): Promise<void>;
  /** mdbox/sdbox with ALT: move messages to (or back from) the alternate storage. */
  altMove?(mailbox: string, uids: readonly number[], toAlt: boolean): Promise<unknown>;
  /** Rebuild indexes from the mail files (doveadm force-resync). */
  forceResync?(mailbox: string): Promise<unknown>;
  /** mdbox: refcount-0 messages not yet purged. */
  listDeleted?(): Promise<Array<{ mapUid: number; guid: string; origMailbox: string | undefined; receivedTime: number | undefined; bodySizeBytes: number }>>;
  recoverDeleted?(mapUid: number, mailbox?: string): Promise<{ mailbox: string; uid: number }>;
  /**
   * Runs `fn` (a purge, an altmove) and reports what it appended to the
   * storage-wide log (mdbox: the map's), in order. Formats without one have
   * no such method: nothing of theirs is storage-wide.
   */
  collectStorageLog?<T>(fn: () => Promise<T>): Promise<{ value: T; appends: StorageLogAppend[] }>;
  close(): Promise<void>;
}
