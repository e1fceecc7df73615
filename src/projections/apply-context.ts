/**
 * What the fold works with while it applies the records of one transaction
 * (or one lone entry): the immer draft of the small state parts, one
 * RecordEditor for the records, and the entry being applied, so that every
 * error names its log position.
 *
 * Reading through an immer draft creates a proxy per object touched, which
 * for the extension list would cost more than the change itself; so lookups
 * (`exts`) read the plain pre-transaction list until something changes an
 * extension's registration, and only writers go through the draft.
 */
import { castDraft, type Draft } from "immer";
import { LogCorruptedError } from "../errors.js";
import type { LogEntry } from "../log/types.js";
import type { RecordEditor, RecordStore } from "./record-store.js";
import type { ExtensionInfo, IndexMapState } from "./state.js";
import type { IndexBaseHeader } from "./base-header.js";

export class ApplyContext {
  /** The entry being applied. */
  entry!: LogEntry;
  private editor: RecordEditor | undefined;
  private headerCopy: Draft<IndexBaseHeader> | undefined;
  private registryChanged = false;

  constructor(
    /** The state being changed (immer draft; `records` is not drafted). */
    readonly draft: Draft<IndexMapState>,
    /** The state before the transaction. */
    private readonly base: IndexMapState,
    /** Ownership token for in-place record changes (see RecordStore). */
    private readonly token: object,
  ) {}

  /**
   * The extensions for lookups (ids, names, offsets, sizes, reset ids). Do not
   * read `hdrData` here: use `hdrData(id)`, which sees this transaction's writes.
   */
  get exts(): readonly ExtensionInfo[] {
    return this.registryChanged ? (this.draft.extensions as readonly ExtensionInfo[]) : this.base.extensions;
  }

  /** The extension list for changing anything but header data. */
  changeRegistry(): Draft<ExtensionInfo>[] {
    this.registryChanged = true;
    return this.draft.extensions;
  }

  /** Current header data (padded) of extension `extId`. */
  hdrData(extId: number): Uint8Array {
    // Only this element gets a draft proxy; the others stay plain objects.
    return this.draft.extensions[extId].hdrData;
  }

  /** Replaces the header data of extension `extId`. */
  setHdrData(extId: number, data: Uint8Array): void {
    this.draft.extensions[extId].hdrData = data;
  }

  /**
   * The base header as a plain mutable object, written back by `finish()`.
   * Reading and writing it through the immer draft cost more than the rest
   * of a flag update (replay applies millions of them).
   */
  get header(): Draft<IndexBaseHeader> {
    // Copied from the plain base state: spreading the immer draft would go through
    // a proxy trap per field. Nothing writes draft.header directly in a fold.
    this.headerCopy ??= { ...this.base.header } as Draft<IndexBaseHeader>;
    return this.headerCopy;
  }

  /** The records as they are now (read-only use). */
  get records(): RecordStore | RecordEditor {
    return this.editor ?? this.base.records;
  }

  /** The records, opened for change. */
  edit(): RecordEditor {
    this.editor ??= this.base.records.edit(this.token);
    return this.editor;
  }

  /** The typed error for a record Dovecot would call corrupted, at this entry's position. */
  corrupt(message: string): LogCorruptedError {
    const { fileSeq, offset } = this.entry.position;
    return new LogCorruptedError(`${this.entry.record.type}: ${message}`, { fileSeq, offset });
  }

  /** Stores the changed records into the draft (a no-op when nothing changed). */
  finish(): void {
    if (this.headerCopy !== undefined) {
      const before = this.base.header as unknown as Record<string, unknown>;
      const after = this.headerCopy as unknown as Record<string, unknown>;
      // Assign only what changed, so a record without effect leaves the state as it was
      // (compared with the plain base: reading the draft would cost a proxy trap per field).
      let target: Record<string, unknown> | undefined;
      for (const key in after) {
        if (before[key] === after[key]) continue;
        target ??= this.draft.header as unknown as Record<string, unknown>;
        target[key] = after[key];
      }
      this.headerCopy = undefined;
    }
    if (this.editor === undefined) return;
    const records = this.editor.finish();
    if (records !== this.base.records) this.draft.records = castDraft(records);
  }
}
