/**
 * Every error the library throws on purpose. Operating errors (bad input,
 * contention, I/O) are these classes with a stable `code`; programmer errors
 * are failed `assert()`s and are never caught.
 */

export type MailstoreErrorCode =
  | "LOG_CORRUPTED"
  | "LOG_HEADER_INVALID"
  | "LOG_INCOMPATIBLE"
  | "LOG_CHAIN_BROKEN"
  | "LOG_POSITION_LOST"
  | "LOCK_TIMEOUT"
  | "INDEX_CORRUPTED"
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "REFCOUNT_OVERFLOW"
  | "MAIL_CORRUPTED"
  | "UNSUPPORTED"
  | "SUBSCRIBER_OVERFLOW"
  | "SUBSCRIPTIONS_CORRUPTED"
  | "REPLICATION_FENCED"
  | "REPLICATION_FAILED";

export interface ErrorLocation {
  /** The file the error concerns. */
  path?: string;
  /** The log file sequence number, when the file is a transaction log. */
  fileSeq?: number;
  /** Byte offset inside `path` where the problem was found. */
  offset?: number;
}

export class MailstoreError extends Error {
  readonly code: MailstoreErrorCode;
  readonly path?: string;
  readonly fileSeq?: number;
  readonly offset?: number;

  constructor(code: MailstoreErrorCode, message: string, where: ErrorLocation = {}) {
    super(formatMessage(message, where));
    this.name = new.target.name;
    this.code = code;
    this.path = where.path;
    this.fileSeq = where.fileSeq;
    this.offset = where.offset;
  }
}

function formatMessage(message: string, where: ErrorLocation): string {
  const parts: string[] = [];
  if (where.path !== undefined) parts.push(where.path);
  if (where.fileSeq !== undefined) parts.push(`file_seq ${where.fileSeq}`);
  if (where.offset !== undefined) parts.push(`offset ${where.offset}`);
  return parts.length === 0 ? message : `${parts.join(", ")}: ${message}`;
}

/** A record or header in a transaction log is not what Dovecot would accept. */
export class LogCorruptedError extends MailstoreError {
  constructor(message: string, where: ErrorLocation) {
    super("LOG_CORRUPTED", message, where);
  }
}

/** The log file header is unusable (version, size, indexid, byte order). */
export class LogHeaderError extends MailstoreError {
  constructor(message: string, where: ErrorLocation) {
    super("LOG_HEADER_INVALID", message, where);
  }
}

/** Rotated log files do not chain (prev_file_seq/prev_file_offset mismatch). */
export class LogChainError extends MailstoreError {
  constructor(message: string, where: ErrorLocation) {
    super("LOG_CHAIN_BROKEN", message, where);
  }
}

/** A requested log position is no longer (or never was) in the log files. */
export class LogPositionLostError extends MailstoreError {
  constructor(message: string, where: ErrorLocation) {
    super("LOG_POSITION_LOST", message, where);
  }
}

/** The log lock could not be taken within the timeout. */
export class LockTimeoutError extends MailstoreError {
  constructor(message: string, where: ErrorLocation) {
    super("LOCK_TIMEOUT", message, where);
  }
}

/** dovecot.index (or dovecot.map.index) is not usable. */
export class IndexCorruptedError extends MailstoreError {
  constructor(message: string, where: ErrorLocation) {
    super("INDEX_CORRUPTED", message, where);
  }
}

/** A mail file (dbox u.N / m.N, …) is not what Dovecot would accept. */
export class MailCorruptedError extends MailstoreError {
  constructor(message: string, where: ErrorLocation) {
    super("MAIL_CORRUPTED", message, where);
  }
}

/** The IMAP subscriptions file is not text in a format Dovecot 2.3 writes. */
export class SubscriptionsCorruptedError extends MailstoreError {
  constructor(message: string, where: ErrorLocation) {
    super("SUBSCRIPTIONS_CORRUPTED", message, where);
  }
}

/**
 * Another writer published to this mailbox's subject since this writer last
 * did (JetStream refused the expected-last-subject-sequence): this writer is
 * fenced, and nothing of its commit reached the stream. `path` is the
 * subject, `offset` the local log offset of the refused commit.
 */
export class ReplicationFencedError extends MailstoreError {
  readonly subject: string;
  readonly expectedSequence: number;
  constructor(message: string, subject: string, expectedSequence: number, where: ErrorLocation = {}) {
    super("REPLICATION_FENCED", message, { path: subject, ...where });
    this.subject = subject;
    this.expectedSequence = expectedSequence;
  }
}

/** Shipping or applying a mailbox's log through JetStream failed (`path`: the subject or replica mailbox). */
export class ReplicationError extends MailstoreError {
  constructor(message: string, where: ErrorLocation = {}) {
    super("REPLICATION_FAILED", message, where);
  }
}

/** The caller passed something the API cannot accept. */
export class InvalidArgumentError extends MailstoreError {
  constructor(message: string, where: ErrorLocation = {}) {
    super("INVALID_ARGUMENT", message, where);
  }
}

/** The codes that say a transaction log or index file is broken (see isCorruptionError). */
const CORRUPTION_CODES: ReadonlySet<MailstoreErrorCode> = new Set<MailstoreErrorCode>([
  "LOG_CORRUPTED", "LOG_HEADER_INVALID", "LOG_CHAIN_BROKEN", "LOG_POSITION_LOST", "INDEX_CORRUPTED",
]);

/**
 * @returns true when `err` says a transaction log or index file (dovecot.index*,
 *   dovecot.map.index*) cannot be used as it is: the one case where a rebuild
 *   may replace that file. Not LOG_INCOMPATIBLE (a log this library does not
 *   support is not broken), and never fs, lock or mail-file errors.
 */
export function isCorruptionError(err: unknown): err is MailstoreError {
  return err instanceof MailstoreError && CORRUPTION_CODES.has(err.code);
}

/**
 * A broken invariant: a bug in the engine, not bad input or a failing disk
 * (those are MailstoreErrors). Deliberately not a MailstoreError: nothing
 * should handle it as an expected condition.
 */
export class AssertionFailure extends Error {
  override readonly name = "AssertionFailure";
  constructor(message: string) {
    super(`mailstore internal error: ${message}`);
  }
}

/** @throws AssertionFailure when `condition` is false: a "can't happen" path. */
export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}

export function assertNever(value: never): never {
  throw new AssertionFailure(`unexpected ${JSON.stringify(value)}`);
}
