/**
 * mailstore's public API: open a Dovecot mail location, use its mailboxes
 * through transactions, views and change streams, and read the logs.
 */
export { openStorage, Storage, type StorageOptions, type MailboxTreeHooks, type MailboxTreeChange, type MailboxIdentity, type StorageHooks, type StorageChange } from "./api/storage.js";
export type { StorageLogAppend } from "./drivers/driver.js";
export { resolveMailLocation, type ResolvedMailLocation, type ResolveOptions } from "./drivers/location-detect.js";
export { Mailbox, type MailboxOptions, type CommitResult, type CommitHooks, type CommittedRange, SubscriberOverflowError } from "./api/mailbox.js";
export { STATUS_ITEMS, type StatusItem, type MailboxStatus } from "./api/mailbox-status.js";
export { FETCH_FIELDS, type FetchField, type FetchedMessage, type FetchOptions } from "./api/mailbox-fetch.js";
export { searchUids, searchRanges, FLAG_KEYS, type SearchKey, type SearchQuery } from "./api/search.js";
export { MailboxTransaction, toRanges, type AppendInput, type FlagAction, type TransactionCommitResult } from "./api/mailbox-transaction.js";
export type { MoveResult } from "./api/mailbox-move.js";
export type { MailboxUpdate } from "./api/mailbox-update.js";
export { MailboxViewHandle } from "./api/mailbox-view.js";
export { changeBatchFromEffects, type ChangeBatch, type MailboxChange } from "./api/changes.js";
export type { Effect, TransactionEffects } from "./projections/effects.js";
export { flagNames, parseFlagNames } from "./shared/flags.js";
export * from "./shared/errors.js";
export type { LogPosition, LogRecord, LogEntry, LogTransaction, LogFileHeader, UidRange } from "./log/types.js";
export { TransactionLog, type FsyncMode, type LogOptions, type AppendResult } from "./log/log.js";
export { readLog, type LogReadResult } from "./log/view.js";
export { parseLogBytes, type ParsedLogFile } from "./log/file.js";
export { followLog } from "./log/follow.js";
export { stateAt, loadState } from "./index-io/load-state.js";
export { getHeader, messageCount, recordAt, lookupUid, keywordNames, highestModseq, recentCount, position, type MessageRecord } from "./projections/read.js";
export type { IndexMapState } from "./projections/state.js";
export type { ViewChanges } from "./projections/view.js";
export { exportBundle, importBundle } from "./forensics/export.js";
export { encodeBundle, decodeBundle, type EventBundle } from "./forensics/bundle.js";
export { importMailboxes, type ImportOptions, type ImportProgress, type ImportedMailbox } from "./convert/import.js";
