/**
 * Names in JetStream: one stream for every replicated storage, one subject
 * per mailbox (`<prefix>.<storage-id>.<mailbox-guid>`) and two per storage
 * (`._storage`, `._subscriptions`), replicated ×3, and one object-store
 * bucket for bodies too large for a stream message.
 */
import { InvalidArgumentError } from "../shared/errors.js";

export interface StreamNames {
  /** Stream name (default MAILSTORE). */
  stream: string;
  /** First subject token (default `mail`). */
  subjectPrefix: string;
  /** Object-store bucket for large bodies (default `mailstore-bodies`). */
  bodyBucket: string;
  /** Stream and bucket replicas (default 3). */
  replicas: number;
}

export const DEFAULT_NAMES: StreamNames = { stream: "MAILSTORE", subjectPrefix: "mail", bodyBucket: "mailstore-bodies", replicas: 3 };

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** @throws InvalidArgumentError when `id` cannot be a subject token. */
export function checkToken(what: string, id: string): string {
  if (!TOKEN.test(id)) throw new InvalidArgumentError(`${what} "${id}" must be 1-64 of A-Z a-z 0-9 _ - (a NATS subject token)`);
  return id;
}

export function mailboxSubject(names: StreamNames, storageId: string, mailboxGuid: string): string {
  return `${names.subjectPrefix}.${checkToken("storage id", storageId)}.${checkToken("mailbox GUID", mailboxGuid)}`;
}

/** Every mailbox of a storage. */
export function storageSubjects(names: StreamNames, storageId: string): string {
  return `${names.subjectPrefix}.${checkToken("storage id", storageId)}.>`;
}

/**
 * The last token of a storage's own subject, for purge and altmove
 * (`<prefix>.<storage-id>._storage`): in the same stream, and under the
 * replica's filter `<prefix>.<storage-id>.>`, so a replica gets these
 * in stream order with the mailbox commits. A mailbox subject's token is
 * a GUID, 32 hex digits, so it never collides.
 */
export const STORAGE_TOKEN = "_storage";

export function storageSubject(names: StreamNames, storageId: string): string {
  return `${names.subjectPrefix}.${checkToken("storage id", storageId)}.${STORAGE_TOKEN}`;
}

export function isStorageSubject(subject: string): boolean {
  return subject.endsWith(`.${STORAGE_TOKEN}`);
}

/**
 * The last token of a storage's subscriptions subject
 * (`<prefix>.<storage-id>._subscriptions`). Each message carries the whole
 * list after a change (wire.ts), so its subject's last message is the
 * current list: a replica restarted from an earlier position looks that up
 * and skips the older lists instead of passing through them again, which
 * it could not do on `_storage`, shared with purges and altmoves. Nothing
 * orders subscriptions with mail (a subscription may name a mailbox that
 * does not exist), so a subject of their own loses no ordering.
 */
export const SUBSCRIPTIONS_TOKEN = "_subscriptions";

export function subscriptionsSubject(names: StreamNames, storageId: string): string {
  return `${names.subjectPrefix}.${checkToken("storage id", storageId)}.${SUBSCRIPTIONS_TOKEN}`;
}

export function isSubscriptionsSubject(subject: string): boolean {
  return subject.endsWith(`.${SUBSCRIPTIONS_TOKEN}`);
}

/** Whether `subject` is a storage's own (`_storage`, `_subscriptions`): its messages are ShippedStorageEvents, not commits. */
export function isStoreLevelSubject(subject: string): boolean {
  return isStorageSubject(subject) || isSubscriptionsSubject(subject);
}
