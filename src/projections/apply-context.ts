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
import { LogCorruptedError } from "../shared/errors.js";
import type { LogEntry } from "../log/types.js";
import type { EffectsCollector } from "./effects.js";
import type { RecordEditor, RecordStore } from "./record-store.js";
import type { ExtensionInfo, IndexMapState } from "./state.js";
import type { IndexBaseHeader } from "./base-header.js";

export class ApplyContext {
  /** The entry being applied. */
  entry!: LogEntry;
  private editor: RecordEditor | undefined;
  private headerCopy: Draft<IndexBaseHeader> | undefined;
  private registryChanged = false;
  private keywordsChanged = false;
  /** Header data this context owns (a copy it may change), by extension id; see writableHdrData. */
  private readonly hdrOwned = new Map<number, Uint8Array>();
  private readonly extIdNames: string[] = [];
  private readonly extIdValues: number[] = [];
  private logModseq: bigint;

  constructor(
    /** The state being changed (immer draft; `records` is not drafted). */
    readonly draft: Draft<IndexMapState>,
    /** The state before the transaction. */
    private readonly base: IndexMapState,
    /** Ownership token for in-place record changes (see RecordStore). */
    private readonly token: object,
    /**
     * Where appliers report what they changed, or undefined when nobody asked
     * (replay): appliers test it once per record, never per message.
     */
    readonly effects: EffectsCollector | undefined = undefined,
  ) {
    this.logModseq = base.logModseq;
  }

  /**
   * The extensions for lookups (ids, names, offsets, sizes, reset ids). Do not
   * read `hdrData` here: use `hdrData(id)`, which sees this transaction's writes.
   */
  get exts(): readonly ExtensionInfo[] {
    return this.registryChanged ? (this.draft.extensions as readonly ExtensionInfo[]) : this.base.extensions;
  }

  /** The extension list for changing anything but header data. */
  changeRegistry(): Draft<ExtensionInfo>[] {
    // A registry change may resize header data: it starts from what was written so far.
    this.flushHdrData();
    this.registryChanged = true;
    this.extIdNames.length = 0;
    this.extIdValues.length = 0;
    return this.draft.extensions;
  }

  /** Keyword names (read the plain base list until this context adds one: the draft costs a proxy per read). */
  get keywords(): readonly string[] {
    return this.keywordsChanged ? (this.draft.keywords as readonly string[]) : this.base.keywords;
  }

  /** Registers keyword `name` at the next index. */
  addKeywordName(name: string): void {
    this.keywordsChanged = true;
    this.draft.keywords.push(name);
  }

  /**
   * Where the modseq extension is (its id when its header can hold
   * mail_index_modseq_header, the per-message field's offset), filled by
   * apply-modseq.ts on first use: every record asks, and nothing moves
   * while the registry is the plain base list.
   */
  readonly modseqLayout: { known: boolean; hdrId: number; fieldOffset: number; hdr: Uint8Array | undefined } = {
    known: false,
    hdrId: -1,
    fieldOffset: -1,
    /** The modseq header data this context owns (writableHdrData's copy), while it owns it. */
    hdr: undefined,
  };

  /** True once this context changed the extension registry (caches of ids and offsets no longer hold). */
  get registryChanging(): boolean {
    return this.registryChanged;
  }

  /** Index of the extension called `name`, or -1. */
  extIdByName(name: string): number {
    // Cached only while the registry is the plain base list, which cannot change under us.
    if (this.registryChanged) return this.exts.findIndex((e) => e.name === name);
    // A short list compared with ===: the fold asks for the same two or three
    // constant names per record, and a Map lookup hashes the name each time.
    const names = this.extIdNames;
    for (let i = 0; i < names.length; i++) if (names[i] === name) return this.extIdValues[i];
    const id = this.base.extensions.findIndex((e) => e.name === name);
    names.push(name);
    this.extIdValues.push(id);
    return id;
  }

  /** Current header data (padded) of extension `extId`: read only. */
  hdrData(extId: number): Uint8Array {
    return this.hdrOwned.get(extId) ?? this.exts[extId].hdrData;
  }

  /** Replaces the header data of extension `extId` with `data`, which the caller hands over. */
  setHdrData(extId: number, data: Uint8Array): void {
    this.hdrOwned.set(extId, data);
    this.modseqLayout.hdr = undefined;
  }

  /**
   * Header data of extension `extId` to change in place: copied on the first
   * call, then the same copy for the rest of this context (a replay batch
   * raises highest_modseq hundreds of times; one copy serves them all).
   */
  writableHdrData(extId: number): Uint8Array {
    let data = this.hdrOwned.get(extId);
    if (data === undefined) {
      data = this.hdrData(extId).slice();
      this.hdrOwned.set(extId, data);
    }
    return data;
  }

  /** Stores header data changed through this context into the draft. */
  private flushHdrData(): void {
    // Once in the draft, the copy belongs to the next state: nothing may write it any more.
    this.modseqLayout.hdr = undefined;
    if (this.hdrOwned.size === 0) return;
    // Written through the draft only here: each draft access costs a proxy trap.
    for (const [extId, data] of this.hdrOwned) this.draft.extensions[extId].hdrData = data;
    this.hdrOwned.clear();
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

  /** Raises the modseq after the last transaction applied (kept here, written by `finish()`). */
  raiseLogModseq(modseq: bigint): void {
    if (modseq > this.logModseq) this.logModseq = modseq;
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
    this.flushHdrData();
    if (this.logModseq !== this.base.logModseq) this.draft.logModseq = this.logModseq;
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
