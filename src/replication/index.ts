/**
 * Replication's public entry (`mailstore/replication`): shipping every
 * mailbox's log through NATS JetStream, replicas, cross-node change
 * streams. Apart from the main entry so that a process that does not
 * replicate never loads the NATS client (the CLI imports it on demand:
 * it would otherwise cost every command's start-up).
 */
export { ReplicationConnection, type ReplicationConnectOptions } from "./connection.js";
export { Publisher, type PublisherOptions, replicatedCommitHooks, replicatedStorageHooks, replicatedTreeHooks, publishTreeChange, takeOver, type CommitMode, type SubjectCursor, type TreeOp } from "./publisher.js";
export { Outbox, type OutboxStatus } from "./outbox.js";
export { remoteChanges, type RemoteChangesOptions } from "./remote-changes.js";
export { readPosition as readReplicaPosition, type ReplicaPosition } from "./position-file.js";
export { Replica, promoteStore, promotedPublisher, type ReplicaOptions, type ReplicaStatus } from "./replica.js";
export { DEFAULT_NAMES as REPLICATION_DEFAULT_NAMES, mailboxSubject, storageSubject, type StreamNames } from "./subjects.js";
export type { ShippedCommit, ShippedBody, MailboxOp, ShippedLogRange, ShippedStorageEvent, StorageOp } from "./wire.js";
